"""Recurrence: RRULE parsing and expansion in the event's own zone (DST-correct)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from core.errors import Invalid

_FORBIDDEN_FREQ = ("SECONDLY", "MINUTELY", "HOURLY")
MAX_OCCURRENCES = 5000


def parse_rrule(text: str, first_start_local: datetime) -> rrule:
    """Parse an RFC 5545 RRULE (with or without the ``RRULE:`` prefix) anchored at the first start.

    Raises Invalid('rrule', …) when it does not parse or repeats faster than daily.
    """
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body or "\n" in body or "DTSTART" in body.upper():
        raise Invalid("rrule", "give one RRULE line such as 'FREQ=WEEKLY;BYDAY=MO,TH'")
    freq = next(
        (p.split("=", 1)[1].upper() for p in body.split(";") if p.upper().startswith("FREQ=")),
        None,
    )
    if freq in _FORBIDDEN_FREQ:
        raise Invalid("rrule", f"FREQ={freq} is too frequent for reminders; use DAILY or slower")
    try:
        rule = rrulestr(body, dtstart=first_start_local.replace(tzinfo=None))
    except (ValueError, TypeError) as exc:
        raise Invalid("rrule", f"not a valid RRULE: {exc}") from None
    if not isinstance(rule, rrule):
        raise Invalid("rrule", "give a single RRULE, not a rule set")
    return rule


def occurrence_starts(
    *,
    starts_at: datetime,
    timezone: str,
    rrule_text: str | None,
    exdates: list[datetime],
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """UTC start instants of the occurrences that begin in [window_start, window_end).

    Recurrence runs on local wall-clock time, so a weekly 10:00 stays 10:00 across DST changes.
    """
    zone = ZoneInfo(timezone)
    if rrule_text is None:
        return [starts_at] if window_start <= starts_at < window_end else []
    local_first = starts_at.astimezone(zone)
    rule = parse_rrule(rrule_text, local_first)
    excluded = {d.astimezone(UTC) for d in exdates}
    lo = window_start.astimezone(zone).replace(tzinfo=None)
    hi = window_end.astimezone(zone).replace(tzinfo=None)
    out: list[datetime] = []
    # Widen by a day each side: a local wall-clock window is not the same as a UTC window.

    for naive in rule.between(lo - timedelta(days=1), hi + timedelta(days=1), inc=True):
        instant = naive.replace(tzinfo=zone).astimezone(UTC)
        if instant in excluded or not (window_start <= instant < window_end):
            continue
        out.append(instant)
        if len(out) >= MAX_OCCURRENCES:
            break
    return out
