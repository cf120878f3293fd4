"""Property: for any zone in tzdata, any of these rules and any start in 2027, the occurrences the
API lists, the reminders it plans and what a calendar app reads from the feed are the same UTC
instants. Hypothesis picks the cases (derandomized, so a run is repeatable)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import httpx
import recurring_ical_events
from hypothesis import HealthCheck, given, settings
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
