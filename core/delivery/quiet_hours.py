"""Member preferences applied at send time: quiet hours, in the member's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.teams.models import Member


def quiet_until(member: Member, now: datetime) -> datetime | None:
    """The end of the member's quiet window if ``now`` falls inside it, else None.

    A window whose start is after its end (22:00-08:00) runs over midnight.
    """
    if member.quiet_start is None or member.quiet_end is None:
        return None
    zone = ZoneInfo(member.timezone)
    local = now.astimezone(zone)
    start, end, clock = member.quiet_start, member.quiet_end, local.time()
    if start == end:
        return None
    if start < end:
        inside, ends_on = start <= clock < end, local.date()
    else:
        inside = clock >= start or clock < end
        ends_on = local.date() if clock < end else local.date() + timedelta(days=1)
    if not inside:
        return None
    return datetime.combine(ends_on, end, tzinfo=zone).astimezone(UTC)


def defer_until(member: Member, now: datetime, useful_until: datetime) -> datetime | None:
    """When to send instead of now, if the member is in quiet hours and the message would still
    be of use then (a reminder before the start, a request before the deadline); else None."""
    until = quiet_until(member, now)
    if until is None or until >= useful_until:
        return None
    return until
