"""A member's own agenda: the coming occurrences of the events that reach them, with their answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import memberships, reaches_member
from core.events.confirmations import occurrence_key
from core.events.models import Answer, Confirmation, Event, EventStatus
from core.events.occurrences import expand, overrides_of
from core.teams.models import Member

HORIZON = timedelta(days=60)


@dataclass(frozen=True)
class AgendaItem:
    event_id: uuid.UUID
    title: str
    location: str
    all_day: bool
    starts_at: datetime
    occurrence: str
    answer: Answer | None
    asks_confirmation: bool
    deadline: datetime | None


async def agenda(
    session: AsyncSession, member: Member, now: datetime, limit: int = 10
) -> list[AgendaItem]:
    """The member's next ``limit`` occurrences (within 60 days), soonest first."""
    who = await memberships(session, member.id)
    events = list(
        await session.scalars(
            select(Event).where(
                Event.workspace_id == member.workspace_id,
                Event.deleted_at.is_(None),
                Event.status == EventStatus.scheduled.value,
                reaches_member(Event.audience, who),
            )
        )
    )
    if not events:
        return []
    overrides = await overrides_of(session, [e.id for e in events])
    answers = {
        (c.event_id, c.occurrence): Answer(c.answer)
        for c in await session.scalars(
            select(Confirmation).where(
                Confirmation.member_id == member.id,
                Confirmation.event_id.in_([e.id for e in events]),
            )
        )
    }
    items: list[AgendaItem] = []
    for event in events:
        mine = [o for o in overrides if o.event_id == event.id]
        for occurrence in expand(event, mine, now, now + HORIZON)[:limit]:
            key = occurrence_key(occurrence.recurrence_id)
            minutes = event.confirm_before_minutes
            start = occurrence.recurrence_id or occurrence.starts_at
            items.append(
                AgendaItem(
                    event_id=event.id,
                    title=event.title,
                    location=event.location,
                    all_day=event.all_day,
                    starts_at=occurrence.starts_at,
                    occurrence=key,
                    answer=answers.get((event.id, key)),
                    asks_confirmation=minutes is not None,
                    deadline=start - timedelta(minutes=minutes) if minutes is not None else None,
                )
            )
    items.sort(key=lambda i: (i.starts_at, i.title))
    return items[:limit]


Upcoming = tuple[Event, datetime | None, datetime]  # event, recurrence id (None: one-off), start


async def workspace_upcoming(
    session: AsyncSession, workspace_id: uuid.UUID, now: datetime, text: str = "", limit: int = 20
) -> list[Upcoming]:
    """The next occurrence of each live event of the workspace (whose title contains ``text``,
    any case), soonest first: what a lead looks at."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    events = list(
        await session.scalars(
            select(Event).where(
                Event.workspace_id == workspace_id,
                Event.deleted_at.is_(None),
                Event.status == EventStatus.scheduled.value,
                Event.title.ilike(pattern),
            )
        )
    )
    overrides = await overrides_of(session, [e.id for e in events])
    found: list[Upcoming] = []
    for event in events:
        mine = [o for o in overrides if o.event_id == event.id]
        coming = expand(event, mine, now, now + HORIZON)
        if coming:
            found.append((event, coming[0].recurrence_id, coming[0].starts_at))
    found.sort(key=lambda u: (u[2], u[0].title))
    return found[:limit]


async def next_matching(
    session: AsyncSession, workspace_id: uuid.UUID, text: str, now: datetime
) -> Upcoming | None:
    """The soonest coming occurrence of a live event whose title contains ``text``."""
    found = await workspace_upcoming(session, workspace_id, now, text, limit=1)
    return found[0] if found else None


async def next_occurrence_key(session: AsyncSession, event: Event, now: datetime) -> str:
    """The occurrence key of the event's next occurrence (within 60 days), or "" for a one-off
    event or one with nothing coming: what a board shows when no occurrence is named."""
    if event.rrule is None:
        return ""
    coming = expand(event, await overrides_of(session, [event.id]), now, now + HORIZON)
    return occurrence_key(coming[0].recurrence_id) if coming else ""
