"""Property: for any zone in tzdata, any of these rules and any start in 2027, the occurrences the
API lists, the reminders it plans and what a calendar app reads from the feed are the same UTC
instants. Hypothesis picks the cases (derandomized, so a run is repeatable)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import httpx
import recurring_ical_events
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from tests.conftest import MovableClock, Workspace
from tests.factories import member, ok
from tests.test_calendar_feeds import feed_link

ZONES = sorted(
    z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))
)
RULES = [
    "FREQ=DAILY",
    "FREQ=WEEKLY",
    "FREQ=WEEKLY;INTERVAL=2",
    "FREQ=MONTHLY",
    "FREQ=YEARLY",
    "FREQ=DAILY;COUNT=40",
]
WINDOW = timedelta(days=120)


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    zone=st.sampled_from(ZONES),
    rule=st.sampled_from(RULES),
    day=st.integers(min_value=0, max_value=364),
    minute=st.integers(min_value=0, max_value=24 * 4 - 1).map(lambda q: q * 15),
)
async def test_api_reminders_and_feed_name_the_same_instants(
    acme: Workspace,
    public: httpx.AsyncClient,
    clock: MovableClock,
    zone: str,
    rule: str,
    day: int,
    minute: int,
):
    local = datetime(2027, 1, 1) + timedelta(days=day, minutes=minute)
    first = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    clock.set(first - timedelta(days=1))
    title = f"P {uuid.uuid4().hex[:8]}"
    anna = await member(acme.client, f"Anna {title}")
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": title,
                "starts_at": local.isoformat(),
                "timezone": zone,
                "rrule": rule,
                "audience": {"members": [anna["id"]]},
                "reminder_offsets": [15],
            },
        ),
        201,
    )
    lo, hi = first - timedelta(minutes=7), first + WINDOW
    rows = await ok(
        acme.client.get(
            f"/events/{event['id']}/occurrences",
            params={"from": lo.isoformat(), "to": hi.isoformat()},
        )
    )
    listed = [datetime.fromisoformat(r["starts_at"]) for r in rows]
    assert listed and listed[0] == first

    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    feed = Calendar.from_ical((await public.get(httpx.URL(link["url"]).path)).content)
    seen = recurring_ical_events.of(feed).between(lo, hi)
    read = sorted(e.decoded("DTSTART").astimezone(UTC) for e in seen if str(e["SUMMARY"]) == title)
    assert read == listed

    schedule = await ok(acme.client.get(f"/events/{event['id']}/schedule"))
    planned = sorted(
        datetime.fromisoformat(j["occurrence_start"]) for j in schedule if j["kind"] == "reminder"
    )
    assert planned == listed[: len(planned)] and planned


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    minute_of_day=st.integers(0, 24 * 60 - 1),
    length_minutes=st.integers(1, 36 * 60),
)
# At the edges: ending a minute after the spring change, the first and last minutes of its gap,
# the hour shown twice in the autumn, Lord Howe's half hour, the day Apia skipped (2011: not in
# this window, so its changes here are ordinary ones).
@example(zone="Europe/Berlin", minute_of_day=61, length_minutes=60)
@example(zone="Europe/Berlin", minute_of_day=60, length_minutes=60)
@example(zone="Europe/Berlin", minute_of_day=120, length_minutes=1)
@example(zone="Europe/Berlin", minute_of_day=179, length_minutes=1)
@example(zone="Europe/Berlin", minute_of_day=180, length_minutes=1)
@example(zone="America/New_York", minute_of_day=60, length_minutes=1)
@example(zone="America/New_York", minute_of_day=119, length_minutes=1)
@example(zone="Australia/Lord_Howe", minute_of_day=120, length_minutes=1)
@example(zone="Pacific/Apia", minute_of_day=0, length_minutes=1)
def test_a_series_the_feed_passes_over_has_no_occurrence_near_a_change_of_the_clock(
    zone: str, minute_of_day: int, length_minutes: int
):
    """The feed spells out occurrences whose wall time the clock skips or shows twice, or that
    run across a change of the clock; it skips that search for a series whose time of day is
    hours away from every change. Day by day over a year, no occurrence of a daily series it
    would skip is one of those."""
    from core.calendar.vevents import _may_meet, _offset_changes

    info = ZoneInfo(zone)
    start = time(minute_of_day // 60, minute_of_day % 60)
    length = timedelta(minutes=length_minutes)
    lo, hi = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    changes = _offset_changes(zone, lo, hi)
    if _may_meet(start, length, changes):
        return
    day = lo.date()
    while day < hi.date():
        wall = datetime.combine(day, start)
        first, second = wall.replace(tzinfo=info, fold=0), wall.replace(tzinfo=info, fold=1)
        assert first.utcoffset() == second.utcoffset(), f"{wall} is skipped or shown twice"
        instant = first.astimezone(UTC)
        assert not any(instant <= t.at < instant + length for t in changes), f"{wall} spans one"
        day += timedelta(days=1)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    minute_of_day=st.integers(0, 24 * 60 - 1),
    length_minutes=st.integers(1, 36 * 60),
)
@example(zone="Europe/Berlin", minute_of_day=150, length_minutes=60)
@example(zone="Australia/Lord_Howe", minute_of_day=120, length_minutes=30)
@example(zone="America/St_Johns", minute_of_day=0, length_minutes=36 * 60)
def test_the_feeds_shortcut_past_wall_times_far_from_a_change_keeps_every_one_near(
    zone: str, minute_of_day: int, length_minutes: int
):
    """For a series that can meet a change of the clock, the feed converts to an instant only
    the wall times its test keeps (the rest are far from every change). Day by day over a year,
    every occurrence of a daily series within a day of a change is kept."""
    from core.calendar.vevents import _changes_met

    info = ZoneInfo(zone)
    start = time(minute_of_day // 60, minute_of_day % 60)
    length = timedelta(minutes=length_minutes)
    near = max(timedelta(hours=26), length)
    lo, hi = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    met = _changes_met(zone, lo, hi, start, length)
    if met is None:
        return  # the test above: no occurrence of such a series is near a change
    changes, keep = met
    day = lo.date()
    while day < hi.date():
        wall = datetime.combine(day, start)
        instant = wall.replace(tzinfo=info).astimezone(UTC)
        if any(abs(instant - change.at) <= near for change in changes):
            assert keep(wall), f"{wall} ({instant:%Y-%m-%d %H:%M}Z) is near a change"
        day += timedelta(days=1)
