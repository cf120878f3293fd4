"""Recurrence: RRULE parsing and expansion in the event's own zone (DST-correct)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from core.errors import Invalid

_FORBIDDEN_FREQ = ("SECONDLY", "MINUTELY", "HOURLY")
MAX_OCCURRENCES = 5000


@dataclass(frozen=True)
class Recurrence:
    """A parsed rule anchored at the first start, answering in UTC instants.

    dateutil steps through wall-clock time, so a weekly 10:00 stays 10:00 across DST changes.
    A rule whose UNTIL is in UTC (RFC 5545's form for zoned starts) runs on an aware start;
    otherwise on a naive local one.
    """

    rule: rrule
    zone: ZoneInfo
    aware: bool

    def _local(self, instant: datetime) -> datetime:
        local = instant.astimezone(self.zone)
        return local if self.aware else local.replace(tzinfo=None)

    def _instant(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(UTC)

    def between(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Starts in [lo, hi) as UTC instants (at most MAX_OCCURRENCES)."""
        # Widen by a day each side: a local wall-clock window is not the same as a UTC window.
        found = self.rule.between(
            self._local(lo - timedelta(days=1)), self._local(hi + timedelta(days=1)), inc=True
        )
        out = [i for i in (self._instant(v) for v in found) if lo <= i < hi]
        return out[:MAX_OCCURRENCES]

    def includes(self, instant: datetime) -> bool:
        local = self._local(instant)
        return any(self._instant(v) == instant for v in self.rule.between(local, local, inc=True))


def parse_rrule(text: str, first_start: datetime, timezone: str) -> Recurrence:
    """Parse an RFC 5545 RRULE (with or without the ``RRULE:`` prefix) anchored at the first start.

    Raises Invalid('rrule', …) when it does not parse or repeats faster than daily.
    """
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body or "\n" in body or "DTSTART" in body.upper():
        raise Invalid("rrule", "give one RRULE line such as 'FREQ=WEEKLY;BYDAY=MO,TH'")
    parts = dict(p.split("=", 1) for p in body.upper().split(";") if "=" in p)
    if parts.get("FREQ") in _FORBIDDEN_FREQ:
        raise Invalid(
            "rrule", f"FREQ={parts['FREQ']} is too frequent for reminders; use DAILY or slower"
        )
    zone = ZoneInfo(timezone)
    aware = parts.get("UNTIL", "").endswith("Z")
    local = first_start.astimezone(zone)
    try:
        rule = rrulestr(body, dtstart=local if aware else local.replace(tzinfo=None))
    except (ValueError, TypeError) as exc:
        raise Invalid("rrule", f"not a valid RRULE: {exc}") from None
    if not isinstance(rule, rrule):
        raise Invalid("rrule", "give a single RRULE, not a rule set")
    return Recurrence(rule=rule, zone=zone, aware=aware)


def occurrence_starts(
    *,
    starts_at: datetime,
    timezone: str,
    rrule_text: str | None,
    exdates: list[datetime],
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """UTC start instants of the occurrences that begin in [window_start, window_end)."""
    if rrule_text is None:
        return [starts_at] if window_start <= starts_at < window_end else []
    excluded = {d.astimezone(UTC) for d in exdates}
    recurrence = parse_rrule(rrule_text, starts_at, timezone)
    return [s for s in recurrence.between(window_start, window_end) if s not in excluded]
