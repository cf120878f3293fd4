from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.cached_reads import cached_json
from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.calendar.ics_import import ImportReport, import_calendar
from core.clock import utcnow
from core.errors import Invalid
from core.events import confirmations, occurrence_changes
from core.events import service as events
from core.events.schemas import (
    ConfirmationBoard,
    ConfirmationIn,
    ConfirmationOut,
    EventCreate,
    EventFilter,
    EventOut,
    EventUpdate,
    Occurrence,
    OccurrenceMove,
)
from core.notify import mutes, planning
from core.notify.planning import JobOut
from core.paging import Page
from core.reads.cache import Kind
from core.teams.schemas import Ref

router = APIRouter(route_class=UnitOfWork, prefix="/events", tags=["events"])


@router.post("", status_code=201)
async def create_event(data: EventCreate, actor: ActorDep, session: SessionDep) -> EventOut:
    out = await events.create_event(session, actor, data)
    return out


@router.post(
    "/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/calendar": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_events(request: Request, actor: ActorDep, session: SessionDep) -> ImportReport:
    """Create or update events from an .ics file sent as the body (idempotent by UID).

    `curl --data-binary @team.ics -H 'Content-Type: text/calendar' …/api/v1/events/import`
    """
    raw = await request.body()
    if not raw.strip():
        raise Invalid(
            "body", "send the .ics file as the request body (Content-Type: text/calendar)"
        )
    report = await import_calendar(session, actor, raw)
    return report


@router.get("", response_model=Page[EventOut])
async def list_events(
    request: Request, flt: Annotated[EventFilter, Query()], actor: ActorDep, session: SessionDep
) -> Response:
    return await cached_json(
        request,
        session,
        actor,
        Kind.events,
        flt.model_dump_json(),
        lambda: events.list_events(session, actor, flt),
    )


@router.get("/{event_id}")
async def get_event(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> EventOut:
    return await events.get_event(session, actor, event_id)


@router.patch("/{event_id}")
async def update_event(
    event_id: uuid.UUID, patch: EventUpdate, actor: ActorDep, session: SessionDep
) -> EventOut:
    out = await events.update_event(session, actor, event_id, patch)
    return out


@router.delete("/{event_id}", status_code=204)
async def delete_event(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    await events.delete_event(session, actor, event_id)
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
    lo = start or utcnow()
    hi = end or lo + timedelta(days=90)
    return await occurrence_changes.event_occurrences(session, actor, event_id, lo, hi)


@router.put("/{event_id}/occurrences/{recurrence_id}")
async def move_occurrence(
    event_id: uuid.UUID,
    recurrence_id: datetime,
    data: OccurrenceMove,
    actor: ActorDep,
    session: SessionDep,
) -> Occurrence:
    """Move one occurrence of a recurring event (named by its start by the rule)."""
    out = await occurrence_changes.move_occurrence(session, actor, event_id, recurrence_id, data)
    return out


@router.delete("/{event_id}/occurrences/{recurrence_id}", status_code=204)
async def cancel_occurrence(
    event_id: uuid.UUID, recurrence_id: datetime, actor: ActorDep, session: SessionDep
) -> Response:
    """Cancel one occurrence of a recurring event."""
    await occurrence_changes.cancel_occurrence(session, actor, event_id, recurrence_id)
    return Response(status_code=204)


@router.get("/{event_id}/schedule")
async def event_schedule(
    event_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    include_closed: Annotated[
        bool, Query(description="Also list jobs already done, cancelled or failed")
    ] = False,
) -> list[JobOut]:
    """What vestnik will send for this event, and when."""
    return await planning.event_schedule(session, actor, event_id, include_closed)


@router.put("/{event_id}/confirmations/{member_id}")
async def record_confirmation(
    event_id: uuid.UUID,
    member_id: uuid.UUID,
    data: ConfirmationIn,
    actor: ActorDep,
    session: SessionDep,
) -> ConfirmationOut:
    """Record a member's answer on their behalf (e.g. from another system), until the deadline."""
    out = await confirmations.record_confirmation(session, actor, event_id, member_id, data)
    return out


@router.get("/{event_id}/confirmations")
async def confirmation_board(
    event_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    occurrence: Annotated[datetime | None, Query(description="For a recurring event")] = None,
) -> ConfirmationBoard:
    """Going, not going, maybe and silent, with counts."""
    return await confirmations.confirmation_board(session, actor, event_id, occurrence)


@router.get("/{event_id}/mutes")
async def list_mutes(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> list[Ref]:
    """Members who muted this event: they get none of its reminders, requests or nudges."""
    return await mutes.list_mutes(session, actor, event_id)


@router.put("/{event_id}/mutes/{member_id}", status_code=204)
async def mute_event(
    event_id: uuid.UUID, member_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> Response:
    """Mute the event for one member (idempotent)."""
    await mutes.mute_event(session, actor, event_id, member_id)
    return Response(status_code=204)


@router.delete("/{event_id}/mutes/{member_id}", status_code=204)
async def unmute_event(
    event_id: uuid.UUID, member_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> Response:
    """Unmute: the member hears about the event again from its next message on."""
    await mutes.unmute_event(session, actor, event_id, member_id)
    return Response(status_code=204)


class NudgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occurrence: datetime | None = Field(
        default=None, description="For a recurring event: the occurrence's recurrence id"
    )


@router.post("/{event_id}/nudge", status_code=202)
async def nudge_silent_now(
    event_id: uuid.UUID, actor: ActorDep, session: SessionDep, data: NudgeRequest | None = None
) -> JobOut:
    """Nudge everyone who has not answered yet, now (at most once a minute per occurrence)."""
    occurrence = data.occurrence if data else None
    out = await planning.nudge_now(session, actor, event_id, occurrence)
    return out
