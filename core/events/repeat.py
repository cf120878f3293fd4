"""Recurrence in plain words: the lead's "weekly on Mon and Thu", "every 2 weeks", "monthly on the
last Friday" turned into an RFC 5545 RRULE, and any stored RRULE read back as words.

The form covers what teams schedule; a rule it cannot express (written through the API, or
imported from a calendar file) is kept as it is and shown as its RRULE text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from core.errors import Invalid

Frequency = Literal["none", "daily", "weekly", "monthly", "yearly"]
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
ORDINALS = (1, 2, 3, 4, -1)
_FREQ: dict[Frequency, str] = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "yearly": "YEARLY",
}
_FREQ_BY_RRULE: dict[str, Frequency] = {v: k for k, v in _FREQ.items()}


@dataclass(frozen=True)
class _Words:
    day_short: tuple[str, ...]
    day_long: tuple[str, ...]
    ordinal: dict[int, str]
    every: dict[str, tuple[str, str]]
    on_days: str
    and_: str
    on_nth: str
    until: str
    times: str


_WORDS = {
    "en": _Words(
        day_short=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        day_long=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        ordinal={1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"},
        every={
            "daily": ("every day", "every {n} days"),
            "weekly": ("weekly", "every {n} weeks"),
            "monthly": ("monthly", "every {n} months"),
            "yearly": ("yearly", "every {n} years"),
        },
        on_days="on {days}",
        and_=" and ",
        on_nth="on the {ordinal} {day}",
        until="until {date}",
        times="{n} times",
    ),
    "ru": _Words(
        day_short=("пн", "вт", "ср", "чт", "пт", "сб", "вс"),
        day_long=(
            "понедельник",
            "вторник",
            "среда",
            "четверг",
            "пятница",
            "суббота",
            "воскресенье",
        ),
        ordinal={1: "1-й", 2: "2-й", 3: "3-й", 4: "4-й", -1: "последний"},
        every={
            "daily": ("каждый день", "раз в {n} дн."),
            "weekly": ("каждую неделю", "раз в {n} нед."),
            "monthly": ("каждый месяц", "раз в {n} мес."),
            "yearly": ("каждый год", "раз в {n} г."),
        },
        on_days="по дням: {days}",
        and_=" и ",
        on_nth="{ordinal} день недели «{day}»",
        until="до {date}",
        times="{n} раз",
    ),
}


@dataclass
class Repeat:
    """The recurrence form, field by field."""

    frequency: Frequency = "none"
    interval: int = 1
    weekdays: list[str] = field(default_factory=list)  # weekly: MO..SU
    monthly_by: Literal["day", "weekday"] = "day"  # the start's day of month, or "last Friday"
    ordinal: int = 1  # monthly_by == "weekday": 1..4, or -1 for the last
    weekday: str = "MO"
    until: date | None = None
    count: int | None = None
    custom: str | None = None  # a rule the form cannot express, kept verbatim

    def to_rrule(self) -> str | None:
        """The RRULE for this form, or None for a one-off event. Raises Invalid naming a field."""
        if self.custom:
            return self.custom
        if self.frequency == "none":
            return None
        if self.frequency not in _FREQ:
            raise Invalid("repeat", "choose never, daily, weekly, monthly or yearly")
        if not 1 <= self.interval <= 99:
            raise Invalid("interval", "give a number from 1 to 99")
        parts = [f"FREQ={_FREQ[self.frequency]}"]
        if self.interval > 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.frequency == "weekly" and self.weekdays:
            unknown = [d for d in self.weekdays if d not in WEEKDAYS]
            if unknown:
                raise Invalid("weekdays", f"unknown day {unknown[0]!r}; use MO, TU … SU")
            days = sorted(set(self.weekdays), key=WEEKDAYS.index)
            parts.append("BYDAY=" + ",".join(days))
        if self.frequency == "monthly" and self.monthly_by == "weekday":
            if self.ordinal not in ORDINALS or self.weekday not in WEEKDAYS:
                raise Invalid("ordinal", "choose first … fourth or last, and a day of the week")
            parts.append(f"BYDAY={self.ordinal}{self.weekday}")
        if self.until is not None and self.count is not None:
            raise Invalid("count", "end on a date or after a number of times, not both")
        if self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%d}T235959")
        if self.count is not None:
            if not 1 <= self.count <= 1000:
                raise Invalid("count", "give a number from 1 to 1000")
            parts.append(f"COUNT={self.count}")
        return ";".join(parts)


def _parts(rrule: str) -> dict[str, str]:
    body = rrule.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    return {k.upper(): v.upper() for k, v in (p.split("=", 1) for p in body.split(";") if "=" in p)}


def _until(value: str) -> date | None:
    try:
        return date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        return None


def from_rrule(rrule: str | None) -> Repeat:
    """The form that produces ``rrule``, or a custom one that keeps it verbatim."""
    if not rrule:
        return Repeat()
    parts = _parts(rrule)
    custom = Repeat(custom=rrule)
    frequency = _FREQ_BY_RRULE.get(parts.pop("FREQ", ""))
    if frequency is None:
        return custom
    out = Repeat(frequency=frequency)
    try:
        out.interval = int(parts.pop("INTERVAL", "1"))
        if "COUNT" in parts:
            out.count = int(parts.pop("COUNT"))
    except ValueError:
        return custom
    if "UNTIL" in parts:
        out.until = _until(parts.pop("UNTIL"))
        if out.until is None:
            return custom
    byday = parts.pop("BYDAY", "")
    parts.pop("WKST", None)
    if parts:  # BYMONTHDAY, BYSETPOS …: beyond the form
        return custom
    if byday and frequency == "weekly":
        out.weekdays = byday.split(",")
        if any(d not in WEEKDAYS for d in out.weekdays):
            return custom
    elif byday and frequency == "monthly":
        day, number = byday[-2:], byday[:-2]
        if day not in WEEKDAYS or number.lstrip("+") not in {"1", "2", "3", "4", "-1"}:
            return custom
        out.monthly_by, out.ordinal, out.weekday = "weekday", int(number), day
    elif byday:
        return custom
    return out


def weekday_names(locale: str) -> tuple[str, ...]:
    """Short day names, Monday first, in the reader's language."""
    return _WORDS.get(locale, _WORDS["en"]).day_short


def describe(rrule: str | None, locale: str = "en") -> str:
    """The rule in plain words: "weekly on Mon and Thu", "monthly on the last Friday"."""
    if not rrule:
        return ""
    form = from_rrule(rrule)
    if form.custom:
        return form.custom
    words = _WORDS.get(locale, _WORDS["en"])
    once, many = words.every[form.frequency]
    text = [once if form.interval == 1 else many.format(n=form.interval)]
    if form.weekdays:
        names = [words.day_short[WEEKDAYS.index(d)] for d in form.weekdays]
        joined = ", ".join(names[:-1]) + words.and_ + names[-1] if len(names) > 1 else names[0]
        text.append(words.on_days.format(days=joined))
    if form.monthly_by == "weekday" and form.frequency == "monthly":
        day = words.day_long[WEEKDAYS.index(form.weekday)]
        text.append(words.on_nth.format(ordinal=words.ordinal[form.ordinal], day=day))
    if form.until:
        text.append(words.until.format(date=form.until.isoformat()))
    if form.count:
        text.append(words.times.format(n=form.count))
    return ", ".join(text)
