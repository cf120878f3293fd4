"""The pure planners, table by table: which jobs an event needs, when quiet hours hold a message
back, and which instants a series expands to. No database: each row is one case a user would
recognise ("a 22:00-08:00 window at 23:30 waits until 08:00")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.delivery.quiet_hours import defer_until
from core.events.models import Event
from core.events.occurrences import expand
from core.notify.models import JobKind
from core.notify.planning import planned_jobs
from core.teams.models import Member

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
FAR = NOW + timedelta(days=400)
R, C, N, S = (
    JobKind.reminder,
    JobKind.confirmation_request,
    JobKind.nudge,
    JobKind.deadline_summary,
)


def _event(
    start: datetime,
    *,
    offsets: list[int] | None = None,
    confirm: int | None = None,
    rrule: str | None = None,
    zone: str = "UTC",
    starts_local: datetime | None = None,
) -> Event:
    return Event(
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        title="Sync",
        timezone=zone,
        all_day=False,
        starts_at=start,
        starts_local=starts_local,
        ends_at=start + timedelta(hours=1),
        rrule=rrule,
        exdates=[],
        reminder_offsets=offsets or [],
        confirm_before_minutes=confirm,
        status="scheduled",
        deleted_at=None,
    )


@pytest.mark.parametrize(
    ("hours_ahead", "offsets", "confirm", "expected"),
    [
        # reminders only, in the future
        (48, [1440, 60], None, [(R, 1440), (R, 60)]),
        # a reminder already due before now is not planned
        (12, [1440, 60], None, [(R, 60)]),
        # confirmation: the request goes with the earliest reminder before the deadline, the
        # nudge halfway to the deadline, the summary at the deadline
        (48, [1440], 120, [(R, 1440), (C, 1440), (N, 780), (S, 120)]),
        # no reminder before the deadline: the request 24 h before the deadline (not before now)
        (48, [], 120, [(C, 1560), (N, 840), (S, 120)]),
        # deadline too close after the request for a nudge (under 10 minutes): no nudge
        (3, [], 170, [(C, 180), (S, 170)]),
        # deadline already passed: reminders only
        (1, [30], 120, [(R, 30)]),
        # nothing asked for: nothing planned
        (48, [], None, []),
    ],
    ids=[
        "reminders",
        "past-reminder-dropped",
        "request-with-reminder",
        "request-24h-before-deadline",
        "no-room-for-a-nudge",
        "deadline-passed",
        "nothing",
    ],
)
def test_planned_jobs(
    hours_ahead: int, offsets: list[int], confirm: int | None, expected: list[tuple[JobKind, int]]
):
    start = NOW + timedelta(hours=hours_ahead)
    jobs = planned_jobs(_event(start, offsets=offsets, confirm=confirm), [], NOW, FAR)
    got = sorted(
        ((j.kind, round((start - j.due_at).total_seconds() / 60)) for j in jobs),
        key=lambda kv: (-kv[1], kv[0].value),
    )
    want = sorted(expected, key=lambda kv: (-kv[1], kv[0].value))
    assert got == want


@pytest.mark.parametrize(
    ("status", "deleted"),
    [("cancelled", False), ("scheduled", True)],
    ids=["cancelled", "deleted"],
)
def test_a_cancelled_or_deleted_event_needs_no_jobs(status: str, deleted: bool):
    event = _event(NOW + timedelta(days=2), offsets=[60], confirm=120)
    event.status = status
    event.deleted_at = NOW if deleted else None
    assert planned_jobs(event, [], NOW, FAR) == []


def _member(zone: str, quiet: tuple[time, time] | None) -> Member:
    return Member(
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        name="Anna",
        timezone=zone,
        quiet_start=quiet[0] if quiet else None,
        quiet_end=quiet[1] if quiet else None,
    )


NIGHT = (time(22, 0), time(8, 0))
LUNCH = (time(12, 0), time(13, 0))


@pytest.mark.parametrize(
    ("zone", "quiet", "now", "useful_until", "expected"),
    [
        # no quiet hours: now
        ("Europe/Moscow", None, "2027-03-01T20:30", "2027-03-02T09:00", None),
        # 23:30 Moscow inside 22:00-08:00: waits until 08:00 Moscow (05:00 UTC)
        ("Europe/Moscow", NIGHT, "2027-03-01T20:30", "2027-03-02T09:00", "2027-03-02T05:00"),
        # 07:59 Moscow, still inside: until 08:00 the same morning
        ("Europe/Moscow", NIGHT, "2027-03-02T04:59", "2027-03-02T09:00", "2027-03-02T05:00"),
        # 08:00 sharp is outside (the window is half-open)
        ("Europe/Moscow", NIGHT, "2027-03-02T05:00", "2027-03-02T09:00", None),
        # the message would be of no use by 08:00: sent now rather than never
        ("Europe/Moscow", NIGHT, "2027-03-01T20:30", "2027-03-02T04:00", None),
        # a daytime window in another zone: 12:30 Tokyo waits until 13:00 Tokyo
        ("Asia/Tokyo", LUNCH, "2027-03-01T03:30", "2027-03-02T00:00", "2027-03-01T04:00"),
        # the member's zone, not UTC: 23:30 UTC is 00:30 in Berlin, inside the night there
        ("Europe/Berlin", NIGHT, "2027-03-01T23:30", "2027-03-03T00:00", "2027-03-02T07:00"),
        # a window ending on the day clocks go forward (Berlin, 2027-03-28): 08:00 CEST
        ("Europe/Berlin", NIGHT, "2027-03-28T00:30", "2027-03-29T00:00", "2027-03-28T06:00"),
        # start == end is no window at all
        ("UTC", (time(9, 0), time(9, 0)), "2027-03-01T09:00", "2027-03-02T00:00", None),
    ],
    ids=[
        "no-window",
        "night",
        "last-minute-of-night",
        "window-end-is-outside",
        "too-late-to-wait",
        "daytime-window",
        "member-zone",
        "dst-morning",
        "empty-window",
    ],
)
def test_quiet_hours_deferral(
    zone: str,
    quiet: tuple[time, time] | None,
    now: str,
    useful_until: str,
    expected: str | None,
):
    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    got = defer_until(_member(zone, quiet), utc(now), utc(useful_until))
    assert got == (utc(expected) if expected else None)


@pytest.mark.parametrize(
    ("zone", "local_start", "rrule", "expected_utc"),
    [
        # weekly at 10:00 Berlin across the spring change: 09:00 UTC, then 08:00 UTC
        (
            "Europe/Berlin",
            "2027-03-21T10:00",
            "FREQ=WEEKLY;COUNT=3",
            ["2027-03-21T09:00", "2027-03-28T08:00", "2027-04-04T08:00"],
        ),
        # daily at 02:30 New York: on the day 02:30 does not exist (2027-03-14) it is read with
        # the offset before the gap (RFC 5545 §3.3.5), 03:30 EDT = 07:30 UTC
        (
            "America/New_York",
            "2027-03-13T02:30",
            "FREQ=DAILY;COUNT=3",
            ["2027-03-13T07:30", "2027-03-14T07:30", "2027-03-15T06:30"],
        ),
        # an ambiguous 02:30 (Berlin, 2027-10-31, clocks go back at 03:00) is the first, CEST
        (
            "Europe/Berlin",
            "2027-10-30T02:30",
            "FREQ=DAILY;COUNT=3",
            ["2027-10-30T00:30", "2027-10-31T00:30", "2027-11-01T01:30"],
        ),
        # monthly on the 31st skips months without one (RFC 5545)
        (
            "UTC",
            "2027-01-31T09:00",
            "FREQ=MONTHLY;COUNT=3",
            ["2027-01-31T09:00", "2027-03-31T09:00", "2027-05-31T09:00"],
        ),
    ],
    ids=["weekly-over-spring-change", "daily-in-a-gap", "ambiguous-is-first", "monthly-31st"],
)
def test_recurrence_expansion(zone: str, local_start: str, rrule: str, expected_utc: list[str]):
    local = datetime.fromisoformat(local_start)
    start = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    event = _event(start, rrule=rrule, zone=zone, starts_local=local)
    got = [
        o.starts_at
        for o in expand(event, [], start - timedelta(days=1), start + timedelta(days=300))
    ]
    assert got == [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in expected_utc]
