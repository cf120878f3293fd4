"""Changing single occurrences of a recurring event, and listing occurrences."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by, short
from core.clock import utcnow
from core.errors import Invalid
from core.events.changes import event_changed
from core.events.lookup import as_utc, get_live_event, touch
from core.events.models import EventOverride
from core.events.occurrences import check_recurrence_id, end_of, expand, overrides_of
from core.events.schemas import Occurrence, OccurrenceMove
from core.teams.permissions import Action, Actor

MAX_WINDOW = timedelta(days=366)


async def event_occurrences(
    session: AsyncSession,
    actor: Actor,
    event_id: uuid.UUID,
    window_start: datetime,
    window_end: datetime,
) -> list[Occurrence]:
    """The occurrences of an event that start in the window (at most 366 days wide)."""
    actor.require(Action.read)
    lo, hi = as_utc(window_start, ZoneInfo("UTC")), as_utc(window_end, ZoneInfo("UTC"))
    if hi <= lo:
        raise Invalid("to", "must be after 'from'")
    if hi - lo > MAX_WINDOW:
        raise Invalid("to", "the window may span at most 366 days")
    event = await get_live_event(session, actor, event_id)
    zone = ZoneInfo(event.timezone)
    return [o.in_zone(zone) for o in expand(event, await overrides_of(session, [event.id]), lo, hi)]


async def move_occurrence(
    session: AsyncSession,
    actor: Actor,
    event_id: uuid.UUID,
    recurrence_id: datetime,
    data: OccurrenceMove,
) -> Occurrence:
    """Move one occurrence of a recurring event; the rest of the series stays where it is."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    rid = check_recurrence_id(event, recurrence_id)
    zone = ZoneInfo(event.timezone)
    starts = as_utc(data.starts_at, zone)
    ends = as_utc(data.ends_at, zone) if data.ends_at is not None else end_of(event, starts)
    if ends <= starts:
        raise Invalid("ends_at", "must be after starts_at")
    await session.execute(
        insert(EventOverride)
        .values(
            id=uuid.uuid4(),
            workspace_id=event.workspace_id,
            event_id=event.id,
            recurrence_id=rid,
            starts_at=starts,
            ends_at=ends,
        )
        .on_conflict_do_update(
            index_elements=[EventOverride.event_id, EventOverride.recurrence_id],
            set_={"starts_at": starts, "ends_at": ends},
        )
    )
    touch(event)
    await session.flush()
    await event_changed(session, event, utcnow())
    return Occurrence(recurrence_id=rid, starts_at=starts, ends_at=ends, moved=True).in_zone(zone)


async def cancel_occurrence(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, recurrence_id: datetime
) -> None:
    """Cancel one occurrence of a recurring event (it becomes an EXDATE)."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    rid = check_recurrence_id(event, recurrence_id)
    await session.execute(
        delete(EventOverride).where(
            EventOverride.event_id == event.id, EventOverride.recurrence_id == rid
        )
    )
    event.exdates = sorted({*event.exdates, rid})
    touch(event)
    await session.flush()
    await event_changed(session, event, utcnow())
    record_by(
        session,
        actor,
        "event.occurrence_cancelled",
        event,
        f"event {short(event.title)!r}, occurrence {rid:%Y-%m-%d %H:%M} UTC",
    )
