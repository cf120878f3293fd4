"""A calendar that exercises every part of a served VEVENT, built from fixed events (no database):
escaping and folding, time zones and DST gaps and overlaps, all-day events, series with EXDATEs,
moved and answered occurrences, cancellations, alarms and the member as ATTENDEE.

`tests/data/feed_golden.ics` is this calendar as vestnik rendered it through icalendar's
component objects (before VEVENTs were written directly); `test_ics_text.py` checks that the
direct writer's output reads back identically with icalendar and with vobject. Regenerate only on
purpose: `python -m tests.ics_samples > tests/data/feed_golden.ics` (from a checkout whose renderer
you trust).
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta

from core.calendar.models import Feed, FeedKind
from core.calendar.vevents import FeedBuilder
from core.events.confirmations import occurrence_key
from core.events.models import Event, EventOverride
from core.teams.models import Member, Workspace

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BASE_URL = "https://vestnik.example"
CREATED = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def _event(n: int, **fields: object) -> Event:
    base: dict[str, object] = {
        "id": _id(n),
        "workspace_id": _id(1),
        "ics_uid": None,
        "description": "",
        "location": "",
        "timezone": "Europe/Berlin",
        "all_day": False,
        "starts_local": None,
        "rrule": None,
        "exdates": [],
        "reminder_offsets": [],
        "confirm_before_minutes": None,
        "status": "scheduled",
        "sequence": 2,
        "deleted_at": None,
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(days=n),
    }
    base.update(fields)
    return Event(**base)


def samples() -> list[tuple[Event, list[EventOverride], dict[str, str]]]:
    berlin_series = _event(
        10,
        title="Weekly sync",
        starts_at=datetime(2026, 3, 23, 1, 30, tzinfo=UTC),  # Monday 02:30 CET
        ends_at=datetime(2026, 3, 23, 2, 30, tzinfo=UTC),
        starts_local=datetime(2026, 3, 23, 2, 30),
        rrule="FREQ=WEEKLY;BYDAY=MO;COUNT=60",
        exdates=[datetime(2026, 4, 6, 0, 30, tzinfo=UTC)],
        reminder_offsets=[15, 1440],
        confirm_before_minutes=60,
        location="Room 1, 2nd floor; east",
    )
    moved_rid = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    moved = EventOverride(
        id=_id(11),
        workspace_id=_id(1),
        event_id=berlin_series.id,
        recurrence_id=moved_rid,
        starts_at=moved_rid + timedelta(hours=3),
        ends_at=moved_rid + timedelta(hours=4),
    )
    answered_rid = datetime(2026, 12, 14, 1, 30, tzinfo=UTC)
    return [
        (
            _event(
                20,
                title='Планёрка; "отдел", \\ итоги\nвторая строка ' + "ж" * 60,
                description="Line one\r\nLine two, with; marks\\ and 🎉 " + "x" * 120,
                location="Москва, ул. Тверская, 1",
                starts_at=datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
                ends_at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
                reminder_offsets=[10, 2880],
                confirm_before_minutes=120,
            ),
            [],
            {"": "going"},
        ),
        (berlin_series, [moved], {occurrence_key(answered_rid): "not_going"}),
        (
            _event(
                30,
                title="Offsite",
                timezone="Asia/Tokyo",
                all_day=True,
                starts_at=datetime(2026, 12, 9, 15, 0, tzinfo=UTC),
                ends_at=datetime(2026, 12, 11, 15, 0, tzinfo=UTC),
            ),
            [],
            {},
        ),
        (
            _event(
                40,
                title="Cancelled call",
                status="cancelled",
                starts_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
                ends_at=datetime(2026, 12, 2, 10, 30, tzinfo=UTC),
                reminder_offsets=[5],
            ),
            [],
            {},
        ),
        (
            _event(
                50,
                title="Deleted review",
                deleted_at=datetime(2026, 11, 20, tzinfo=UTC),
                starts_at=datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
                ends_at=datetime(2026, 12, 3, 11, 0, tzinfo=UTC),
            ),
            [],
            {},
        ),
        (
            _event(
                60,
                title="Standup (UTC)",
                timezone="UTC",
                starts_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
                ends_at=datetime(2026, 12, 1, 9, 15, tzinfo=UTC),
                starts_local=datetime(2026, 12, 1, 9, 0),
                rrule="FREQ=DAILY;COUNT=5",
                exdates=[datetime(2026, 12, 3, 9, 0, tzinfo=UTC)],
            ),
            [],
            {},
        ),
        (
            _event(
                70,
                title="Night shift",  # 02:30 on the fall-back day, the second time round
                starts_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
                ends_at=datetime(2026, 10, 25, 3, 0, tzinfo=UTC),
            ),
            [],
            {},
        ),
        (
            _event(
                80,
                title="Retreat",
                ics_uid="retreat-2026@example.org",
                timezone="America/New_York",
                starts_at=datetime(2026, 10, 30, 13, 0, tzinfo=UTC),
                ends_at=datetime(2026, 11, 2, 17, 0, tzinfo=UTC),
                starts_local=datetime(2026, 10, 30, 9, 0),
                rrule="FREQ=YEARLY;COUNT=3",
            ),
            [],
            {},
        ),
    ]


def sample_calendar(builder: type[FeedBuilder] = FeedBuilder) -> bytes:
    workspace = Workspace(id=_id(1), name="Acme, Inc.", timezone="Europe/Berlin")
    member = Member(
        id=_id(2),
        workspace_id=_id(1),
        name='Anna "K"; Lee',
        email="anna@example.org",
        locale="ru",
        timezone="Europe/Berlin",
    )
    feed = Feed(FeedKind.member, workspace, member=member)
    build = builder(feed, BASE_URL, cache=False, now=NOW)
    for event, overrides, answers in samples():
        build.add(event, overrides, answers)
    return build.to_ical()


if __name__ == "__main__":
    sys.stdout.buffer.write(sample_calendar())
