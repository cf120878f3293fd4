"""VTIMEZONE components built from tzdata's own transitions, read the way RFC 5545 reads them.

An observance's onset (DTSTART and each RDATE) is the local time *before* the change, taken with
TZOFFSETFROM: New York's 2027 spring change is 02:00 (-05:00), which is 07:00Z. icalendar's
generator writes the wall time after a spring change (03:00), which that reading puts at 08:00Z,
an hour late; calendar apps that use the VTIMEZONE rather than their own tzdata would shift every
event in that hour. So vestnik walks the zone itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

FIRST_YEAR, LAST_YEAR = 2000, 2040
_STEP = timedelta(hours=6)  # no zone changes its offset twice within six hours


@dataclass(frozen=True)
class Transition:
    at: datetime  # the first UTC instant of the new offset
    before: timedelta
    after: timedelta
    name: str
    daylight: bool


def _state(zone: ZoneInfo, instant: datetime) -> tuple[timedelta, str, bool]:
    local = instant.astimezone(zone)
    return local.utcoffset() or timedelta(0), local.tzname() or "", bool(local.dst())


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Transition]:
    """Every change of offset, name or daylight saving in [start, end), to the second."""
    at, state = start, _state(zone, start)
    while at < end:
        step = min(at + _STEP, end)
        later = _state(zone, step)
        if later != state:
            lo, hi = at, step  # state at lo, a different one at hi
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                lo, hi = (mid, hi) if _state(zone, mid) == state else (lo, mid)
            new = _state(zone, hi)
            yield Transition(hi, state[0], new[0], new[1], new[2])
            state = new
        at = step


@lru_cache(maxsize=256)
def vtimezone(name: str) -> Timezone:
    """The zone's VTIMEZONE for FIRST_YEAR..LAST_YEAR: its state on the first day, then one
    observance per kind of change, its onsets as DTSTART and RDATEs. Built once per process."""
    zone = ZoneInfo(name)
    start = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
    end = datetime(LAST_YEAR, 1, 1, tzinfo=UTC)
    component = Timezone()
    component.add("tzid", name)
    offset, tzname, daylight = _state(zone, start)
    first = TimezoneDaylight() if daylight else TimezoneStandard()
    first.add("dtstart", datetime(FIRST_YEAR, 1, 1))
    first.add("tzoffsetfrom", offset)
    first.add("tzoffsetto", offset)
    first.add("tzname", tzname)
    component.add_component(first)
    kinds: dict[tuple[timedelta, timedelta, str, bool], list[datetime]] = {}
    for change in transitions(zone, start, end):
        onset = (change.at + change.before).replace(tzinfo=None)  # local time before the change
        key = (change.before, change.after, change.name, change.daylight)
        kinds.setdefault(key, []).append(onset)
    for (before, after, tzname, daylight), onsets in kinds.items():
        observance = TimezoneDaylight() if daylight else TimezoneStandard()
        observance.add("dtstart", onsets[0])
        for onset in onsets[1:]:
            observance.add("rdate", onset)
        observance.add("tzoffsetfrom", before)
        observance.add("tzoffsetto", after)
        observance.add("tzname", tzname)
        component.add_component(observance)
    return component


@lru_cache(maxsize=256)
def vtimezone_text(name: str) -> bytes:
    """The zone's VTIMEZONE as feeds write it, serialised once per process: forty years of onsets,
    a tenth of a feed's rebuild after one change when serialised again each time."""
    return bytes(vtimezone(name).to_ical())
