from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ActorDep, SessionDep
from core.events import service as events
from core.events.schemas import EventCreate, EventFilter, EventOut, EventUpdate, Occurrence
from core.paging import Page

router = APIRouter(prefix="/events", tags=["events"])


@router.post("", status_code=201)
async def create_event(data: EventCreate, actor: ActorDep, session: SessionDep) -> EventOut:
    out = await events.create_event(session, actor, data)
    await session.commit()
    return out


@router.get("")
async def list_events(
    flt: Annotated[EventFilter, Query()], actor: ActorDep, session: SessionDep
) -> Page[EventOut]:
    return await events.list_events(session, actor, flt)


@router.get("/{event_id}")
async def get_event(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> EventOut:
    return await events.get_event(session, actor, event_id)


@router.patch("/{event_id}")
async def update_event(
    event_id: uuid.UUID, patch: EventUpdate, actor: ActorDep, session: SessionDep
) -> EventOut:
    out = await events.update_event(session, actor, event_id, patch)
    await session.commit()
    return out


@router.delete("/{event_id}", status_code=204)
async def delete_event(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    await events.delete_event(session, actor, event_id)
    await session.commit()
    return Response(status_code=204)


@router.get("/{event_id}/occurrences")
async def event_occurrences(
    event_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    start: Annotated[datetime | None, Query(alias="from", description="Default: now")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Default: 90 days on")] = None,
) -> list[Occurrence]:
    """Occurrences starting in [from, to), expanded in the event's zone (at most 366 days)."""
    lo = start or datetime.now(UTC)
    hi = end or lo + timedelta(days=90)
    return await events.event_occurrences(session, actor, event_id, lo, hi)
