"""iCalendar content lines written directly (RFC 5545 section 3.1): escaping, quoting, folding and
the value types a VEVENT of ours holds.

icalendar builds a component object per property and serialises it back (about 1 ms per event,
nine tenths of a 10,000-event feed's cold build); a VEVENT is a short list of lines, so we write
them. The calendar's header and its VTIMEZONEs still come from icalendar (once per feed or zone).
`tests/test_ics_text.py` reads the output back with icalendar and vobject against what the
component objects gave.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

LIMIT = 75  # octets a content line holds before it is folded (RFC 5545 3.1)
_ESCAPED = re.compile(r"[\\;,\r\n]")


def text(value: str) -> str:
    """A TEXT value (3.3.11): backslash, semicolon and comma escaped, line breaks as \\n."""
    if _ESCAPED.search(value) is None:  # most titles: nothing to escape
        return value
    return (
        value.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def param(value: str) -> str:
    """A parameter value (3.2): quoted when it holds a separator. The caller keeps control
    characters and double quotes out (a parameter value cannot hold them)."""
    return f'"{value}"' if any(c in value for c in ",;:") else value


def fold(line: str) -> bytes:
    """One content line, folded at 75 octets without splitting a UTF-8 character, with CRLF."""
    return _fold(line.encode())


def _fold(raw: bytes) -> bytes:
    if len(raw) <= LIMIT:  # most lines
        return raw + b"\r\n"
    parts, start, room = [], 0, LIMIT
    while start < len(raw):
        end = min(start + room, len(raw))
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # inside a character: back to its start
            end -= 1
        parts.append(raw[start:end])
        start, room = end, LIMIT - 1  # a continuation line starts with one space
    return b"\r\n ".join(parts) + b"\r\n"


# A date-time's fields as ready-made text, joined by an f-string: a third of the time of
# %-formatting six numbers, and a feed of 10,000 events writes 50,000 date-times.
_TWO = [f"{n:02d}" for n in range(60)]
_YEARS = {year: f"{year:04d}" for year in range(1900, 2301)}


def line(value: str) -> str:
    """One content line with its CRLF, folded as ``fold`` does when longer than a line holds.
    Every line of a VEVENT is written through it (or is of fixed, short shape), so a VEVENT's text
    is ready to encode as it is: most lines are short ASCII, checked without encoding."""
    if len(value) <= LIMIT and value.isascii():
        return value + "\r\n"
    raw = value.encode()
    return value + "\r\n" if len(raw) <= LIMIT else _fold(raw).decode()


def wall(v: datetime) -> str:
    """A DATE-TIME's digits without a zone (3.3.5, form 1), the zone given by the caller."""
    try:
        year = _YEARS[v.year]
    except KeyError:  # outside the years events are kept in
        year = f"{v.year:04d}"
    two = _TWO
    return f"{year}{two[v.month]}{two[v.day]}T{two[v.hour]}{two[v.minute]}{two[v.second]}"


def utc_value(value: datetime) -> str:
    """A UTC DATE-TIME value (3.3.5, form 2)."""
    return wall(value if value.tzinfo is UTC else value.astimezone(UTC)) + "Z"


def _zone(value: datetime) -> str | None:
    """The TZID a date-time is written with, or None for UTC (written with a Z)."""
    zone = value.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key not in ("UTC", "Etc/UTC"):
        return zone.key
    return None


def when(name: str, value: datetime | date) -> str:
    """DTSTART, DTEND, RECURRENCE-ID: a DATE, a UTC DATE-TIME, or a local one with its TZID."""
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE:{value:%Y%m%d}"
    zone = _zone(value)
    if zone is None:
        return f"{name}:{utc_value(value)}"
    return f"{name};TZID={zone}:{wall(value)}"


def when_list(name: str, values: list[datetime | date]) -> list[str]:
    """EXDATE: one line per kind of value (dates, UTC, each zone), values comma-separated."""
    groups: dict[str, list[str]] = {}
    for value in values:
        line = when(name, value)
        head, _, body = line.partition(":")
        groups.setdefault(head, []).append(body)
    return [f"{head}:{','.join(bodies)}" for head, bodies in groups.items()]


def utc(name: str, value: datetime) -> str:
    return f"{name}:{utc_value(value)}"


@lru_cache(maxsize=1024)  # alarms repeat the same few offsets across every event
def duration(value: timedelta) -> str:
    """A DURATION (3.3.6): days, then hours, minutes and seconds; negative before a start."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    out = f"{sign}P"
    if value.days:
        out += f"{value.days}D"
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if value.seconds:
        out += "T" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
        out += f"{seconds}S" if seconds else ""
    return out if out not in ("P", "-P") else "PT0S"
