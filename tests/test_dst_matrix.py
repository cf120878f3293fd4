"""Zones × rules × starts (inside a spring-forward gap, in a fall-back overlap, at 10:00) over 14
months: the API's occurrences, the reminders planned, the member feed read by icalendar +
recurring-ical-events and the group feed read by vobject (through the served VTIMEZONE) all equal an
independent dateutil expansion in wall-clock time, compared as UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil.rrule import rrulestr

from core.calendar.zones import transitions
from tests.calendar_readers import icalendar_occurrences, vobject_starts
from tests.conftest import MovableClock, Workspace
from tests.factories import group, member, ok
from tests.test_calendar_feeds import feed_link

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Apia",
    "Europe/Moscow",
    "America/Sao_Paulo",
]
RULES = ["weekly", "monthly", "daily", "yearly"]
SPAN = timedelta(days=14 * 31)
YEAR = datetime(2027, 1, 1, tzinfo=UTC)


def _starts(name: str) -> dict[str, datetime]:
    """Local wall-clock starts to try in this zone in 2027: 10:00 always; inside the first spring
    gap and the first fall-back overlap where the zone has them."""
    zone = ZoneInfo(name)
    out = {"10:00": datetime(2027, 6, 8, 10, 0)}
    for change in transitions(zone, YEAR, YEAR.replace(year=2028)):
        shift = change.after - change.before
        if shift > timedelta(0) and "gap" not in out:
            out["gap"] = (change.at + change.before).replace(tzinfo=None) + shift / 2
        if shift < timedelta(0) and "overlap" not in out:
            out["overlap"] = (change.at + change.after).replace(tzinfo=None) - shift / 2
            out["second"] = out["overlap"]  # the same wall time, given with the later offset
    return out


# History the zones' rules no longer produce: Moscow's last fall-back (2014), Sao Paulo's last
# spring-forward at midnight (2018) before Brazil dropped DST; Apia's skipped 30 December 2011,
# whose 10:00 reads (RFC 5545: the offset before the gap) as the 31st's 10:00 — one occurrence.
HISTORY = {
    "Europe/Moscow": datetime(2014, 10, 20, 1, 30),
    "America/Sao_Paulo": datetime(2018, 10, 21, 0, 30),
    "Pacific/Apia": datetime(2011, 12, 27, 10, 0),
}
CASES = [(z, r, s) for z in ZONES for s in _starts(z) for r in RULES] + [
    (z, r, "history") for z in HISTORY for r in RULES
]


def _rule(kind: str, local: datetime) -> str:
    weekday = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[local.weekday()]
    other = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[(local.weekday() + 3) % 7]
    # The last such weekday of the month when it is one (Europe's changes: the last Sunday).
    last = (local + timedelta(days=7)).month != local.month
    nth = -1 if last else (local.day - 1) // 7 + 1
    return {
        "weekly": f"FREQ=WEEKLY;BYDAY={weekday},{other}",
        "monthly": f"FREQ=MONTHLY;BYDAY={nth}{weekday}",
        "daily": "FREQ=DAILY",
        "yearly": "FREQ=YEARLY",
    }[kind]


def _oracle(
    rule: str, local: datetime, zone: ZoneInfo, lo: datetime, hi: datetime
) -> list[datetime]:
    """dateutil in wall-clock time; a wall time the clock skips is read with the offset before
    the gap, an ambiguous one as the first (PEP 495's fold=0, RFC 5545's reading)."""
    day = timedelta(days=2)  # a wall-clock window is up to a day off a UTC one
    walls = rrulestr(rule, dtstart=local).between(local - day, local + SPAN + day, inc=True)
    instants = {w.replace(tzinfo=zone).astimezone(UTC) for w in walls}  # duplicates count once
    return sorted(i for i in instants if lo <= i < hi)


def _utc(values: list[datetime]) -> list[datetime]:
    """As UTC instants, each once (RFC 5545: duplicate instances are one occurrence)."""
    return sorted({v.astimezone(UTC) for v in values})


@pytest.mark.parametrize(("zone_name", "rule_kind", "start_kind"), CASES)
async def test_api_reminders_and_both_feeds_agree_with_an_independent_expansion(
    acme: Workspace,
    public: httpx.AsyncClient,
    clock: MovableClock,
    zone_name: str,
    rule_kind: str,
    start_kind: str,
):
    zone = ZoneInfo(zone_name)
    local = HISTORY[zone_name] if start_kind == "history" else _starts(zone_name)[start_kind]
    rule = _rule(rule_kind, local)
    first = local.replace(tzinfo=zone, fold=int(start_kind == "second")).astimezone(UTC)
    given = local.isoformat()
    if start_kind == "second":  # "01:30-05:00": the second 01:30; the rest repeat the first
        given = first.astimezone(zone).isoformat()
    lo, hi = first - timedelta(hours=2), first + SPAN + timedelta(minutes=7)  # off any occurrence
    expected = [first] + [e for e in _oracle(rule, local, zone, lo, hi) if e > first]
    exdates = expected[1:3] if rule_kind == "daily" else []
    expected = [e for e in expected if e not in exdates]
    clock.set(first - timedelta(days=1))

    anna = await member(acme.client, "Anna", timezone=zone_name)
    team = await group(acme.client, "Team", anna)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Matrix",
                "starts_at": given,
                "timezone": zone_name,
                "rrule": rule,
                "exdates": [e.isoformat() for e in exdates],
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [30],
            },
        ),
        201,
    )

    # The API, in windows of at most 366 days.
    listed: list[datetime] = []
    cut = lo + timedelta(days=300)
    for a, b in ((lo, cut), (cut, hi)):
        rows = await ok(
            acme.client.get(
                f"/events/{event['id']}/occurrences",
                params={"from": a.isoformat(), "to": b.isoformat()},
            )
        )
        listed += [datetime.fromisoformat(r["starts_at"]) for r in rows]
    assert sorted(listed) == expected
    # Every occurrence lasts exactly as long as the first (an hour), DST change days included.
    assert all(
        datetime.fromisoformat(r["ends_at"]) - datetime.fromisoformat(r["starts_at"])
        == timedelta(hours=1)
        for r in rows
    )

    # The reminders planned so far (the recurring horizon): 30 minutes before each occurrence.
    schedule = await ok(acme.client.get(f"/events/{event['id']}/schedule"))
    planned = {
        datetime.fromisoformat(j["occurrence_start"]): datetime.fromisoformat(j["due_at"])
        for j in schedule
        if j["kind"] == "reminder"
    }
    assert planned, "no reminder planned"
    assert set(planned) <= set(expected)
    assert all(due == start - timedelta(minutes=30) for start, due in planned.items())
    assert sorted(planned) == expected[: len(planned)]

    # The member's and the group's feeds, each through icalendar + recurring-ical-events and
    # through vobject (which builds its zone from the served VTIMEZONE).
    for path in (f"/members/{anna['id']}/calendar-feed", f"/groups/{team['id']}/calendar-feed"):
        served = await public.get(httpx.URL((await feed_link(acme, path))["url"]).path)
        seen = icalendar_occurrences(served.content, "Matrix", lo, hi)
        assert _utc([start for start, _ in seen]) == expected, path
        # Exactly an hour each, also across a change of the clock (not an hour of wall time).
        assert {end.astimezone(UTC) - start.astimezone(UTC) for start, end in seen} == {
            timedelta(hours=1)
        }
        # vobject reads a wall time in a gap with the offset after it and an ambiguous one as
        # the second, not as RFC 5545 does; the feed spells those occurrences out as overrides in
        # UTC, which a calendar app applies by RECURRENCE-ID (read as its own expansion is).
        assert _utc(vobject_starts(served.text, "Matrix", lo, hi)) == expected, path
