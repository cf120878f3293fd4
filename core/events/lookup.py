"""Small shared pieces of the events domain: times from the API, live lookups, change marks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.errors import NotFound
from core.events.models import Event
from core.scoping import get_scoped
from core.teams.permissions import Actor


def as_utc(value: datetime, zone: ZoneInfo) -> datetime:
    """An instant from an API time: naive means wall-clock time in ``zone``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


async def get_live_event(session: AsyncSession, actor: Actor, event_id: uuid.UUID) -> Event:
    """The event, unless it is in another workspace or deleted (then NotFound)."""
    event = await get_scoped(session, Event, actor.workspace_id, event_id, "event")
    if event.deleted_at is not None:
        raise NotFound("event", event_id)
    return event


def touch(event: Event) -> None:
    """Record a change: calendar apps replace their copy when SEQUENCE grows."""
    event.sequence += 1
    event.updated_at = utcnow()
