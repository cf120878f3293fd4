"""Per-event mutes: a member hears nothing more about one event until they unmute it."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.events.lookup import get_live_event
from core.notify.models import EventMute
from core.scoping import get_scoped
from core.teams.models import Member
from core.teams.permissions import Action, Actor
from core.teams.schemas import Ref


async def mute_event(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, member_id: uuid.UUID
) -> None:
    """Stop the event's reminders, requests and nudges for this member. Muting twice is fine."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    member = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    await session.execute(
        insert(EventMute)
        .values(
            id=uuid.uuid4(),
            workspace_id=event.workspace_id,
            event_id=event.id,
            member_id=member.id,
            muted_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )


async def unmute_event(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, member_id: uuid.UUID
) -> None:
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    member = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    await session.execute(
        delete(EventMute).where(EventMute.event_id == event.id, EventMute.member_id == member.id)
    )


async def list_mutes(session: AsyncSession, actor: Actor, event_id: uuid.UUID) -> list[Ref]:
    actor.require(Action.read)
    event = await get_live_event(session, actor, event_id)
    rows = await session.execute(
        select(Member.id, Member.name)
        .join(EventMute, EventMute.member_id == Member.id)
        .where(EventMute.event_id == event.id)
        .order_by(Member.name)
    )
    return [Ref(id=ident, name=name) for ident, name in rows]
