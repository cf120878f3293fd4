"""Occurrences of events: expanding a series (with its moved occurrences) in the event's zone."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Invalid
from core.events.lookup import as_utc
from core.events.models import Event, EventOverride
from core.events.recurrence import occurrence_starts, parse_rrule
from core.events.schemas import Occurrence

MAX_WINDOW = timedelta(days=366)


def wall_duration(event: Event) -> timedelta:
    """Length on the wall clock of the event's zone (what RFC 5545 DTEND - DTSTART means)."""
    zone = ZoneInfo(event.timezone)
    start = event.starts_at.astimezone(zone).replace(tzinfo=None)
    return event.ends_at.astimezone(zone).replace(tzinfo=None) - start


def end_of(event: Event, start: datetime) -> datetime:
    """When an occurrence starting at ``start`` ends: the first one's exact duration (RFC 5545: a
    DTEND gives every instance "the same exact duration"), so a two-hour meeting on a DST change
    day is still two hours. All-day events keep their days (midnight to midnight)."""
    if not event.all_day:
        return start + (event.ends_at - event.starts_at)
    zone = ZoneInfo(event.timezone)
    local = start.astimezone(zone).replace(tzinfo=None) + wall_duration(event)
    return local.replace(tzinfo=zone).astimezone(UTC)


def expand(
    event: Event, overrides: Sequence[EventOverride], window_start: datetime, window_end: datetime
) -> list[Occurrence]:
    """Occurrences that start in [window_start, window_end), moved ones at their new time.

    This is the one definition of "when does this event happen"; the calendar feed and the API
    both use it.
    """
    if event.rrule is None:
        if window_start <= event.starts_at < window_end:
            return [
                Occurrence(recurrence_id=None, starts_at=event.starts_at, ends_at=event.ends_at)
            ]
        return []
    excluded = set(event.exdates)
    moved = {o.recurrence_id: o for o in overrides if o.recurrence_id not in excluded}
    base = occurrence_starts(
        starts_at=event.starts_at,
        starts_local=event.starts_local,
        timezone=event.timezone,
        rrule_text=event.rrule,
        exdates=list(event.exdates),
        window_start=window_start,
        window_end=window_end,
    )
    out: list[Occurrence] = []
    for start in base:
        override = moved.pop(start, None)
        if override is None:
            out.append(
                Occurrence(recurrence_id=start, starts_at=start, ends_at=end_of(event, start))
            )
        elif window_start <= override.starts_at < window_end:
            out.append(_moved(override))
    # Occurrences moved into the window from outside it.
    out += [_moved(o) for o in moved.values() if window_start <= o.starts_at < window_end]
    return sorted(out, key=lambda o: o.starts_at)


def _moved(override: EventOverride) -> Occurrence:
    return Occurrence(
        recurrence_id=override.recurrence_id,
        starts_at=override.starts_at,
        ends_at=override.ends_at,
        moved=True,
    )


async def overrides_of(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> list[EventOverride]:
    if not event_ids:
        return []
    rows = await session.scalars(select(EventOverride).where(EventOverride.event_id.in_(event_ids)))
    return list(rows)


def check_recurrence_id(
    event: Event, recurrence_id: datetime, field: str = "recurrence_id"
) -> datetime:
    """``recurrence_id`` in UTC if it is a start of the series by its rule (and not cancelled)."""
    if event.rrule is None:
        raise Invalid(
            field,
            "only a recurring event has occurrences to move; PATCH the event instead",
        )
    rid = as_utc(recurrence_id, ZoneInfo(event.timezone))
    recurrence = parse_rrule(
        event.rrule, event.starts_local or event.starts_at, event.timezone, event.starts_at
    )
    if not recurrence.includes(rid) or rid in set(event.exdates):
        raise Invalid(field, f"{rid.isoformat()} is not an occurrence of this event")
    return rid
