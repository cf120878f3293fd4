"""Recurrence: RRULE parsing and expansion in the event's own zone (DST-correct)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cached_property, lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from core.errors import Invalid

log = logging.getLogger(__name__)

_FORBIDDEN_FREQ = ("SECONDLY", "MINUTELY", "HOURLY")
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_OCCURRENCES = 5000
MAX_INTERVAL = 1000
MAX_COUNT = 10_000
LATEST_UNTIL_YEAR = 2200
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_ORDINAL_WEEKDAY = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
# The most days of one month, by month (February has 29 in leap years).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# How many days one period of each frequency can hold: BYSETPOS beyond it never matches.
_PERIOD_DAYS = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
# A rule that never (or hardly ever) occurs makes dateutil step through every period up to the
# year 9999 before it answers, seconds of work: a new rule must show its first occurrence by then.
FIRST_OCCURRENCE_SECONDS = 1.0


@dataclass(frozen=True)
class Recurrence:
    """A parsed rule anchored at the first start, answering in UTC instants.

    dateutil steps through wall-clock time, so a weekly 10:00 stays 10:00 across DST changes.
    A rule whose UNTIL is in UTC (RFC 5545's form for zoned starts) runs on an aware start;
    otherwise on a naive local one.
    """

    # The rule as parsed (at a stand-in start) and the series' first start; ``rule`` anchors the
    # one at the other when first asked: a feed needs every series' rule checked, but few expanded
    # (anchoring rebuilt dateutil's rule: a twelfth of a 10,000-event feed's first build).
    parsed: rrule
    dtstart: datetime
    zone: ZoneInfo
    aware: bool
    # The wall-clock time of day every occurrence starts at: BYHOUR, BYMINUTE and BYSECOND are
    # refused and FREQ is DAILY or slower, so it is the first start's.
    time_of_day: time
    # The series' first start as an instant, when it was given with an offset that picks the
    # second of two equal wall times (01:30 on a fall-back day): that occurrence is at it, the
    # rest read their wall time as the first (RFC 5545).
    first: tuple[datetime, datetime] | None = None

    @cached_property
    def rule(self) -> rrule:
        """The rule anchored at the first start, as if it had been parsed there."""
        return self.parsed.replace(dtstart=self.dtstart)

    def _local(self, instant: datetime) -> datetime:
        local = instant.astimezone(self.zone)
        return local if self.aware else local.replace(tzinfo=None)

    def _instant(self, value: datetime) -> datetime:
        if self.first is not None and value == self.first[0]:
            return self.first[1]
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(UTC)

    def walls_between(
        self, lo: datetime, hi: datetime, keep: Callable[[datetime], bool] | None = None
    ) -> list[tuple[datetime, datetime]]:
        """(the rule's wall time, its instant) for the starts in [lo, hi), in rule order; with
        ``keep``, only those whose wall time (naive) it keeps, the others never converted to an
        instant (a microsecond or two each)."""
        # Widen by two days each side: a local wall-clock window is not the same as a UTC window
        # (a zone that skipped a whole day, Apia in 2011, is a day off).
        found = self.rule.between(
            self._local(lo - timedelta(days=2)), self._local(hi + timedelta(days=2)), inc=True
        )
        if keep is not None:
            found = [v for v in found if keep(v.replace(tzinfo=None) if self.aware else v)]
        pairs = ((v, self._instant(v)) for v in found)
        return [(v, i) for v, i in pairs if lo <= i < hi]

    def between(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Starts in [lo, hi) as UTC instants (at most MAX_OCCURRENCES). Two wall times that fall
        on one instant (a day a zone skipped reads as the next) are one occurrence (RFC 5545)."""
        out = sorted(dict.fromkeys(i for _, i in self.walls_between(lo, hi)))
        return out[:MAX_OCCURRENCES]

    def wall_time(self, instant: datetime) -> datetime | None:
        """The rule's own local start of the occurrence at ``instant``, or None if the rule has
        none there. On a spring-forward day that is the time the rule names (02:30), which does
        not exist on the clock: the instant reads it with the offset before the gap (RFC 5545), so
        converting the instant back would say 03:30 and miss the occurrence."""
        found = self.walls_between(instant, instant + timedelta(microseconds=1))
        return found[0][0] if found else None

    def includes(self, instant: datetime) -> bool:
        """Whether the rule has an occurrence at exactly ``instant``: the same expansion that lists
        occurrences, so every listed occurrence can be moved or cancelled by the instant listed."""
        return self.wall_time(instant) is not None


def _numbers(name: str, value: str, low: int, high: int, signed: bool) -> list[int]:
    """A BY* list of whole numbers within ±[low, high] (or [low, high] unsigned)."""
    out = []
    for item in value.split(","):
        try:
            number = int(item)
        except ValueError:
            raise Invalid("rrule", f"{name}={value}: {item!r} is not a whole number") from None
        if not low <= abs(number) <= high or (number < 0 and not signed):
            span = f"{low}..{high}" + (f" or -{high}..-{low}" if signed else "")
            raise Invalid("rrule", f"{name}={value}: each value must be in {span}")
        out.append(number)
    return out


@lru_cache(maxsize=1024)  # a feed checks the same few rules ("every week") for many events
def _check_parts(body: str) -> Mapping[str, str]:
    """Every part of an RRULE checked against RFC 5545's ranges and vestnik's bounds."""
    parts: dict[str, str] = {}
    for part in body.upper().split(";"):
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            raise Invalid("rrule", f"{part!r} is not NAME=VALUE; e.g. 'FREQ=WEEKLY;BYDAY=MO,TH'")
        if name in parts:
            raise Invalid("rrule", f"{name} is given twice")
        parts[name] = value
    freq = parts.get("FREQ")
    if freq in _FORBIDDEN_FREQ:
        raise Invalid("rrule", f"FREQ={freq} is too frequent for reminders; use DAILY or slower")
    if freq not in _FREQS:
        raise Invalid("rrule", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    for name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        if name in parts:
            raise Invalid(
                "rrule",
                f"{name} would repeat the event within a day; the time comes from its start",
            )
    known = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYYEARDAY"}
    known |= {"BYWEEKNO", "BYMONTH", "BYSETPOS"}
    unknown = sorted(set(parts) - known)
    if unknown:
        raise Invalid("rrule", f"unknown part {unknown[0]}")
    if "INTERVAL" in parts:
        _numbers("INTERVAL", parts["INTERVAL"], 1, MAX_INTERVAL, signed=False)
        if "," in parts["INTERVAL"]:
            raise Invalid("rrule", "INTERVAL takes one number")
    if "COUNT" in parts:
        _numbers("COUNT", parts["COUNT"], 1, MAX_COUNT, signed=False)
        if "," in parts["COUNT"]:
            raise Invalid("rrule", "COUNT takes one number")
        if "UNTIL" in parts:
            raise Invalid("rrule", "give COUNT or UNTIL, not both")
    if "UNTIL" in parts and not re.fullmatch(r"\d{8}(T\d{6}Z?)?", parts["UNTIL"]):
        raise Invalid("rrule", "UNTIL is a date (20271231) or a time (20271231T235959Z)")
    if "UNTIL" in parts and int(parts["UNTIL"][:4]) > LATEST_UNTIL_YEAR:
        raise Invalid("rrule", f"UNTIL must be before {LATEST_UNTIL_YEAR}")
    if "WKST" in parts and parts["WKST"] not in _WEEKDAYS:
        raise Invalid("rrule", "WKST is a weekday: MO, TU, WE, TH, FR, SA or SU")
    ordinal_limit = 53 if freq == "YEARLY" else 5
    for item in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []:
        found = _ORDINAL_WEEKDAY.match(item)
        if found is None:
            raise Invalid("rrule", f"BYDAY={parts['BYDAY']}: {item!r} is not like MO, 1MO or -1FR")
        if found.group(2) is not None:
            if freq not in ("MONTHLY", "YEARLY"):
                raise Invalid("rrule", "numbered weekdays (1MO, -1FR) need FREQ=MONTHLY or YEARLY")
            if not 1 <= int(found.group(2)) <= ordinal_limit:
                raise Invalid(
                    "rrule", f"BYDAY={parts['BYDAY']}: the number must be 1..{ordinal_limit}"
                )
    months = _numbers("BYMONTH", parts["BYMONTH"], 1, 12, False) if "BYMONTH" in parts else []
    if "BYMONTHDAY" in parts:
        days = _numbers("BYMONTHDAY", parts["BYMONTHDAY"], 1, 31, signed=True)
        longest = max(_MONTH_DAYS[m - 1] for m in months) if months else 31
        if all(abs(d) > longest for d in days):
            raise Invalid("rrule", "no month in BYMONTH has the day in BYMONTHDAY: it never occurs")
    if "BYYEARDAY" in parts:
        _numbers("BYYEARDAY", parts["BYYEARDAY"], 1, 366, signed=True)
    if "BYWEEKNO" in parts:
        if freq != "YEARLY":
            raise Invalid("rrule", "BYWEEKNO needs FREQ=YEARLY")
        _numbers("BYWEEKNO", parts["BYWEEKNO"], 1, 53, signed=True)
    if "BYSETPOS" in parts:
        _numbers("BYSETPOS", parts["BYSETPOS"], 1, _PERIOD_DAYS[freq], signed=True)
    return MappingProxyType(parts)


def parse_rrule(
    text: str, first_start: datetime, timezone: str, first_instant: datetime | None = None
) -> Recurrence:
    """Parse an RFC 5545 RRULE (with or without the ``RRULE:`` prefix) anchored at the first start.

    Raises Invalid('rrule', …) naming what is wrong: it does not parse, repeats faster than daily,
    or a part is out of range (INTERVAL 1..1000, COUNT 1..10000, UNTIL before 2200, BY* ranges).
    """
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body or "\n" in body or "\r" in body or "DTSTART" in body.upper():
        raise Invalid("rrule", "give one RRULE line such as 'FREQ=WEEKLY;BYDAY=MO,TH'")
    if len(body) > 500:
        raise Invalid("rrule", "an RRULE is at most 500 characters")
    parts = _check_parts(body)
    if not 1900 <= first_start.year <= LATEST_UNTIL_YEAR:
        raise Invalid("starts_at", f"a recurring event starts between 1900 and {LATEST_UNTIL_YEAR}")
    zone = ZoneInfo(timezone)
    aware = parts.get("UNTIL", "").endswith("Z")
    # A naive first start is the series' wall-clock start as given (it may not exist on the
    # clock: a DST gap); an aware one is an instant, shown in the zone.
    # (datetime.replace is a microsecond a call: a feed parses a rule per series, so those
    # already in the form wanted are kept as they are.)
    if first_start.tzinfo is None:
        local = first_start.replace(tzinfo=zone)
        dtstart = local if aware else first_start
    else:
        local = first_start.astimezone(zone)
        dtstart = local if aware else local.replace(tzinfo=None)
    try:
        # Parsed at a start as aware as this one, so anchoring it (``Recurrence.rule``) cannot
        # fail on UNTIL's form.
        parsed = _parsed(body, aware)
    except (ValueError, TypeError) as exc:
        raise Invalid("rrule", f"not a valid RRULE: {exc}") from None
    first = None
    if first_instant is not None:
        reads_as = (local.replace(fold=0) if local.fold else local).astimezone(UTC)
        if reads_as != first_instant:
            first = (dtstart, first_instant)
    return Recurrence(
        parsed=parsed,
        dtstart=dtstart,
        zone=zone,
        aware=aware,
        time_of_day=dtstart.time(),
        first=first,
    )


@lru_cache(maxsize=1024)  # a feed reads the same few rules ("every week") for many events
def _parsed(body: str, aware: bool) -> rrule:
    """The rule as dateutil parses it, anchored at a stand-in start as aware as the real one
    (dateutil checks UNTIL against it): parsing is dateutil's slow part, and ``rrule.replace``
    anchors the parsed rule at the real start as if it had been parsed there."""
    rule = rrulestr(body, dtstart=datetime(2000, 1, 1, tzinfo=UTC if aware else None))
    if not isinstance(rule, rrule):
        raise Invalid("rrule", "give a single RRULE, not a rule set")
    return rule


def usable_rule(
    text: str | None, first_start: datetime, timezone: str, first_instant: datetime | None = None
) -> Recurrence | None:
    """A stored rule, parsed, if it passes today's checks (one stored by an older vestnik may not)."""
    if text is None:
        return None
    try:
        return parse_rrule(text, first_start, timezone, first_instant)
    except Invalid:
        return None


async def require_an_occurrence(recurrence: Recurrence) -> None:
    """Refuse a rule that never occurs (or too rarely to find its first occurrence quickly):
    searched off the event loop, and given up after FIRST_OCCURRENCE_SECONDS."""
    search = asyncio.get_running_loop().run_in_executor(None, next, iter(recurrence.rule), None)
    try:
        first = await asyncio.wait_for(asyncio.shield(search), FIRST_OCCURRENCE_SECONDS)
    except TimeoutError:
        first = None
    if first is None:
        raise Invalid("rrule", "this rule never occurs (no date matches every part)")


def occurrence_starts(
    *,
    starts_at: datetime,
    starts_local: datetime | None = None,
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
    recurrence = usable_rule(rrule_text, starts_local or starts_at, timezone, starts_at)
    if recurrence is None:
        # A rule stored before these checks existed (INTERVAL=0 never ends): only the first start
        # stands until a lead fixes the rule, rather than hanging whatever expands it.
        log.warning("event rule %r fails today's checks; only its first start counts", rrule_text)
        return [starts_at] if window_start <= starts_at < window_end else []
    return [s for s in recurrence.between(window_start, window_end) if s not in excluded]
