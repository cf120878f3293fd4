"""One occurrence as a member of its audience sees it: where, when, their answer, and who else
is going when the lead allows it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.events.confirmations import in_audience, occurrence_key, recurrence_id_of, tally
from core.events.lookup import get_live_event
from core.events.models import Answer, Confirmation
from core.events.occurrences import check_recurrence_id, overrides_of
from core.teams.models import Member
from core.teams.permissions import system_actor


@dataclass(frozen=True)
class EventDetails:
    event_id: uuid.UUID
    occurrence: str
    title: str
    description: str
    location: str
    all_day: bool
    starts_at: datetime
    ends_at: datetime
    rrule: str | None
    asks_confirmation: bool
    deadline: datetime | None
    answer: Answer | None
    going: list[str] | None  # None: the lead keeps the list private


async def event_details(
    session: AsyncSession, member: Member, event_id: uuid.UUID, occurrence: str
) -> EventDetails:
    """Raises NotFound for an event of another workspace, one that does not reach the member, or
    an occurrence the event does not have: as if it did not exist."""
    event = await get_live_event(session, system_actor(member.workspace_id), event_id)
    try:
        recurrence_id = recurrence_id_of(occurrence)
    except ValueError:
        raise NotFound("occurrence", occurrence) from None
    if (recurrence_id is None) != (event.rrule is None):
        raise NotFound("occurrence", occurrence)
    if not await in_audience(session, event, member.id):
        raise NotFound("event", event_id)
    starts, ends = event.starts_at, event.ends_at
    if recurrence_id is not None:
        check_recurrence_id(event, recurrence_id, "occurrence")
        moved = next(
            (
                o
                for o in await overrides_of(session, [event.id])
                if o.recurrence_id == recurrence_id
            ),
            None,
        )
        starts, ends = (
            (moved.starts_at, moved.ends_at)
            if moved
            else (recurrence_id, recurrence_id + (event.ends_at - event.starts_at))
        )
    key = occurrence_key(recurrence_id)
    mine = await session.get(Confirmation, (event.id, member.id, key))
    minutes = event.confirm_before_minutes
    going = None
    if event.show_attendees:
        going = [ref.name for ref in (await tally(session, event, recurrence_id)).going]
    return EventDetails(
        event_id=event.id,
        occurrence=key,
        title=event.title,
        description=event.description,
        location=event.location,
        all_day=event.all_day,
        starts_at=starts,
        ends_at=ends,
        rrule=event.rrule,
        asks_confirmation=minutes is not None,
        deadline=(recurrence_id or event.starts_at) - timedelta(minutes=minutes)
        if minutes is not None
        else None,
        answer=Answer(mine.answer) if mine else None,
        going=going,
    )
