"""Occurrences on DST change days: the API, the feed read back by icalendar + recurring-ical-events,
and the moves and cancels that address them all name the same instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar

from core.calendar.zones import transitions, vtimezone
from tests.calendar_readers import icalendar_occurrences
from tests.calendar_readers import vobject_starts as read_with_vobject
from tests.conftest import MovableClock, Workspace
from tests.factories import member, ok
from tests.test_calendar_feeds import calendar, feed_link

YEAR_2027 = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def feed_occurrences(feed: Calendar, title: str) -> list[tuple[datetime, datetime]]:
    pairs = icalendar_occurrences(feed.to_ical(), title, *YEAR_2027)
    return [(start.astimezone(UTC), end.astimezone(UTC)) for start, end in pairs]


def vobject_starts(text: str, title: str) -> list[datetime]:
    return read_with_vobject(text, title, *YEAR_2027)


# A weekly Sunday 02:30 in New York: on 2027-03-14 02:30 does not exist (clocks jump 02:00 -> 03:00)
# and is read with the offset before the gap, -05:00, so that occurrence is at 07:30Z.
GAP_DAY = "2027-03-14T07:30:00Z"
# 2027-11-07 01:30 happens twice (EDT, then EST); the second is 06:30Z.
SECOND_ONE_THIRTY = "2027-11-07T01:30:00-05:00"


async def _weekly(ws: Workspace, anna: dict) -> dict:
    return await ok(  # type: ignore[no-any-return]
        ws.client.post(
            "/events",
            json={
                "title": "Night shift",
                "starts_at": "2027-03-07T02:30",
                "timezone": "America/New_York",
                "rrule": "FREQ=WEEKLY;BYDAY=SU",
                "audience": {"members": [anna["id"]]},
            },
        ),
        201,
    )


async def _listed(ws: Workspace, event: dict, lo: str, hi: str) -> list[str]:
    rows = await ok(
        ws.client.get(f"/events/{event['id']}/occurrences", params={"from": lo, "to": hi})
    )
    return [r["starts_at"] for r in rows]


async def test_an_occurrence_in_a_spring_forward_gap_can_be_cancelled_by_the_instant_listed(
    acme: Workspace, public: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna")
    event = await _weekly(acme, anna)
    listed = await _listed(acme, event, "2027-03-13T00:00:00Z", "2027-03-15T00:00:00Z")
    assert listed == [GAP_DAY]
    await ok(acme.client.delete(f"/events/{event['id']}/occurrences/{GAP_DAY}"), 204)
    assert await _listed(acme, event, "2027-03-13T00:00:00Z", "2027-03-15T00:00:00Z") == []

    # The feed names the cancelled occurrence by the rule's own wall time (02:30), which readers
    # match against their own expansion: it is gone there too, and the next week is not.
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    feed = await calendar(public, link)
    assert b"EXDATE;TZID=America/New_York:20270314T023000" in feed.to_ical()
    starts = [s for s, _ in feed_occurrences(feed, "Night shift")]
    assert datetime(2027, 3, 14, 7, 30, tzinfo=UTC) not in starts
    assert datetime(2027, 3, 21, 6, 30, tzinfo=UTC) in starts  # 02:30 EDT
    assert vobject_starts(feed.to_ical().decode(), "Night shift") == starts  # a second reader


async def test_an_occurrence_moved_to_the_second_one_thirty_keeps_its_instant_in_the_feed(
    acme: Workspace, public: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna")
    event = await _weekly(acme, anna)
    moved = await ok(
        acme.client.put(
            f"/events/{event['id']}/occurrences/2027-11-07T07:30:00Z",
            json={"starts_at": SECOND_ONE_THIRTY},
        )
    )
    assert moved["starts_at"] == "2027-11-07T06:30:00Z"
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    feed = await calendar(public, link)
    text = feed.to_ical()
    assert b"DTSTART:20271107T063000Z" in text  # a TZID time would read as the first 01:30
    occurrences = dict(feed_occurrences(feed, "Night shift"))
    assert vobject_starts(text.decode(), "Night shift") == sorted(occurrences)
    start = datetime(2027, 11, 7, 6, 30, tzinfo=UTC)
    assert start in occurrences
    assert (occurrences[start] - start).total_seconds() == 3600  # still one hour long


@pytest.mark.parametrize(
    ("rule", "second"),
    [("FREQ=WEEKLY", "2027-04-04T00:30:00Z"), ("FREQ=YEARLY", "2028-03-28T00:30:00Z")],
)
async def test_a_series_given_inside_a_gap_keeps_its_wall_time(
    acme: Workspace, public: httpx.AsyncClient, clock: MovableClock, rule: str, second: str
):
    """02:30 on Berlin's spring-forward day does not exist: that one occurrence is read with the
    offset before the gap (01:30Z); the series stays at 02:30 every other time (00:30Z in summer),
    in the API, in the reminders planned and in the feed."""
    clock.set(datetime(2027, 3, 20, tzinfo=UTC))  # the planning horizon covers the first weeks
    anna = await member(acme.client, "Anna")
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Gap series",
                "starts_at": "2027-03-28T02:30",
                "timezone": "Europe/Berlin",
                "rrule": rule,
                "audience": {"members": [anna["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    first = await _listed(acme, event, "2027-03-27T00:00:00Z", "2027-03-29T00:00:00Z")
    assert first == ["2027-03-28T01:30:00Z"]
    then = await _listed(acme, event, second[:10] + "T00:00:00Z", second[:10] + "T23:00:00Z")
    assert then == [second]
    schedule = await ok(acme.client.get(f"/events/{event['id']}/schedule"))
    reminders = {j["occurrence_start"]: j["due_at"] for j in schedule if j["kind"] == "reminder"}
    assert reminders["2027-03-28T01:30:00Z"] == "2027-03-28T00:30:00Z"
    if rule == "FREQ=WEEKLY":
        assert reminders[second] == "2027-04-03T23:30:00Z"
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    feed = await calendar(public, link)
    assert b"DTSTART;TZID=Europe/Berlin:20270328T023000" in feed.to_ical()
    starts = [s.isoformat().replace("+00:00", "Z") for s, _ in feed_occurrences(feed, "Gap")]
    assert starts[0] == "2027-03-28T01:30:00Z"
    if rule == "FREQ=WEEKLY":
        assert starts[1] == second


ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Europe/Moscow",
    "America/Sao_Paulo",
    "Pacific/Apia",
]


@pytest.mark.parametrize("name", ZONES)
def test_served_vtimezones_change_offset_exactly_when_tzdata_does(name: str):
    """Every onset, read as RFC 5545 says (local time with TZOFFSETFROM), is the instant tzdata
    changes the offset: the second before still has TZOFFSETFROM, the onset has TZOFFSETTO; and
    every change tzdata has in those years is there."""
    component = Calendar.from_ical(vtimezone(name).to_ical()).walk("VTIMEZONE")[0]
    zone = ZoneInfo(name)
    onsets = []
    for observance in component.subcomponents:
        before = observance["TZOFFSETFROM"].td
        after = observance["TZOFFSETTO"].td
        if before == after:
            continue  # the zone's state on the first day
        locals_ = [observance.decoded("DTSTART")]
        rdates = observance.get("RDATE", [])
        for rdate in rdates if isinstance(rdates, list) else [rdates]:
            locals_ += [d.dt for d in rdate.dts]
        for local in locals_:
            instant = (local - before).replace(tzinfo=UTC)
            assert (instant - timedelta(seconds=1)).astimezone(zone).utcoffset() == before, local
            assert instant.astimezone(zone).utcoffset() == after, local
            onsets.append(instant)
    changes = [
        t.at
        for t in transitions(
            zone, datetime(2000, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)
        )
        if t.before != t.after
    ]
    assert sorted(onsets) == changes
    if name == "America/New_York":
        assert datetime(2027, 3, 14, 7, 0, tzinfo=UTC) in onsets  # 02:00 EST, not 08:00Z
