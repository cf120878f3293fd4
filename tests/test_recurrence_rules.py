"""Every RRULE part is checked, and no stored rule can hang what expands it."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Workspace
from tests.factories import fields_of, ok

BASE = {"title": "Sync", "starts_at": "2026-12-07T10:00", "reminder_offsets": [60]}


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL=0: each value must be in 1..1000"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=5000", "1..1000"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=DAILY;COUNT=99999999", "COUNT"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "not both"),
        ("FREQ=DAILY;UNTIL=99991231", "UNTIL must be before 2200"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL is a date"),
        ("FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11;BYMINUTE=0,15,30,45", "BYHOUR"),
        ("FREQ=DAILY;BYMINUTE=0,30", "BYMINUTE"),
        ("FREQ=HOURLY", "too frequent"),
        ("FREQ=SOMETIMES", "FREQ must be"),
        ("INTERVAL=2", "FREQ must be"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY"),
        ("FREQ=WEEKLY;BYDAY=1MO", "numbered weekdays"),
        ("FREQ=MONTHLY;BYDAY=6MO", "1..5"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
        ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "never occurs"),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=8", "BYSETPOS"),
        ("FREQ=MONTHLY;BYWEEKNO=3", "BYWEEKNO needs FREQ=YEARLY"),
        ("FREQ=DAILY;FREQ=WEEKLY", "given twice"),
        ("FREQ=DAILY;X-NAME=1", "unknown part"),
        ("FREQ=DAILY;;", "NAME=VALUE"),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", "never occurs"),
        ("FREQ=DAILY;" + "BYMONTHDAY=1," * 60, "500 characters"),
    ],
)
async def test_a_bad_rule_is_refused_naming_what_is_wrong(acme: Workspace, rule: str, says: str):
    started = time.monotonic()
    response = await acme.client.post("/events", json={**BASE, "rrule": rule})
    assert response.status_code == 422, response.text
    assert fields_of(response.json()) == ["rrule"]
    assert says in response.json()["detail"]
    assert time.monotonic() - started < 30  # never a hang (the search for a first date is bounded)
    assert (await ok(acme.client.get("/events")))["items"] == []


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;WKST=SU",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=13;BYDAY=FR",
        "FREQ=DAILY;COUNT=10",
        "FREQ=WEEKLY;UNTIL=20271231T235959Z",
        "RRULE:FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
    ],
)
async def test_a_good_rule_is_kept(acme: Workspace, rule: str):
    event = await ok(acme.client.post("/events", json={**BASE, "rrule": rule}), 201)
    assert event["rrule"] == rule.removeprefix("RRULE:")


async def test_a_rule_stored_before_the_checks_cannot_hang_the_api(
    acme: Workspace, engine: AsyncEngine, app
):
    """INTERVAL=0 loops forever in dateutil: a row written by an older vestnik counts as its first
    start only, and every path that expands it answers."""
    event = await ok(acme.client.post("/events", json={**BASE, "rrule": "FREQ=DAILY"}), 201)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE events SET rrule = 'FREQ=DAILY;INTERVAL=0' WHERE id = :id"),
            {"id": event["id"]},
        )
    window = {"from": "2026-12-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    occurrences = await asyncio.wait_for(
        ok(acme.client.get(f"/events/{event['id']}/occurrences", params=window)), 30
    )
    assert [o["starts_at"] for o in occurrences] == ["2026-12-07T07:00:00Z"]
    feed = await ok(acme.client.post(f"/events/{event['id']}/ics-link"), 201)
    path = feed["url"].split("8000", 1)[1]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
    ) as anyone:
        answered = await asyncio.wait_for(anyone.get(path), 30)
    assert answered.status_code == 200 and "BEGIN:VEVENT" in answered.text
    assert "RRULE" not in answered.text  # calendar apps would loop on it as dateutil does


async def test_an_expansion_is_bounded_and_a_window_too_wide_is_refused(acme: Workspace):
    """The most a call can ask for: a daily series over 366 days (a rule can repeat at most daily,
    and a window spans at most 366 days); wider is a 422 naming `to`, never a long answer."""
    event = await ok(acme.client.post("/events", json={**BASE, "rrule": "FREQ=DAILY"}), 201)
    widest = {"from": "2027-01-01T00:00:00Z", "to": "2028-01-02T00:00:00Z"}
    rows = await ok(acme.client.get(f"/events/{event['id']}/occurrences", params=widest))
    assert len(rows) == 366
    wider = {"from": "2027-01-01T00:00:00Z", "to": "2028-01-03T00:00:00Z"}
    refused = await acme.client.get(f"/events/{event['id']}/occurrences", params=wider)
    assert refused.status_code == 422 and fields_of(refused.json()) == ["to"]


async def test_one_rule_text_repeats_each_series_from_its_own_start(acme: Workspace):
    """A rule's text is parsed once for every event that uses it; each series still takes the
    day, weekday and time its parts leave open from its own start, and its own UNTIL."""
    window = {"from": "2027-01-01T00:00:00Z", "to": "2027-06-01T00:00:00Z"}
    expected = {
        ("FREQ=MONTHLY", "2027-01-31T09:00"): ["01-31", "03-31", "05-31"],
        ("FREQ=MONTHLY", "2027-02-15T18:30"): ["02-15", "03-15", "04-15", "05-15"],
        ("FREQ=WEEKLY;UNTIL=20270126", "2027-01-04T10:00"): ["01-04", "01-11", "01-18", "01-25"],
        ("FREQ=WEEKLY;UNTIL=20270126", "2027-01-07T10:00"): ["01-07", "01-14", "01-21"],
    }
    for (rule, start), days in expected.items():
        body = {**BASE, "starts_at": start, "rrule": rule, "timezone": "Europe/Berlin"}
        event = await ok(acme.client.post("/events", json=body), 201)
        rows = await ok(acme.client.get(f"/events/{event['id']}/occurrences", params=window))
        starts = [row["starts_at"] for row in rows]
        assert [s[5:10] for s in starts] == days, (rule, start, starts)
        hour = 8 if start.endswith("09:00") else 17 if start.endswith("18:30") else 9
        assert starts[0][11:13] == f"{hour:02}", starts  # its own time, in winter UTC+1
