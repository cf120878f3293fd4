"""Messages that may not have been heard, and what a lead can do about them.

Deliveries in limbo: handed to a channel by a worker that never said what happened.

A worker commits a batch as ``sending`` just before calling the messenger and records the answers
right after. If it dies in between (killed, out of memory, the database gone), the rows stay
``sending``: the message may or may not have arrived, and resending on our own could double it.
Once the job's lease has run out — no live worker holds a send that long — the scheduler marks
them ``unknown`` with the reason, where statistics, the board and the timeline show them, and a
lead may choose to send them again (accepting that some members may get it twice).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.audit import record_by
from core.delivery.models import Delivery, DeliveryStatus, Job
from core.events.models import Event
from core.notify.models import Broadcast
from core.scoping import get_scoped
from core.teams.accounts import has_account
from core.teams.models import Member, Messenger
from core.teams.permissions import Action, Actor

RESENT = "resent by a lead after an unknown outcome"
DELIVERIES_RESENT = "deliveries.resent"


async def resend_unknown(
    session: AsyncSession,
    actor: Actor,
    now: datetime,
    *,
    event_id: uuid.UUID | None = None,
    broadcast_id: uuid.UUID | None = None,
) -> int:
    """Send again, once, every delivery of an event or a broadcast whose outcome is unknown: they
    go back to the retry queue, due now, and the retry pass sends them (too late ones fail).
    Returns how many. Recorded in the audit log. The caller commits."""
    actor.require(Action.manage_events)
    subject: Event | Broadcast
    if event_id is not None:
        subject = await get_scoped(session, Event, actor.workspace_id, event_id, "event")
        jobs = select(Job.id).where(Job.event_id == subject.id)
    elif broadcast_id is not None:
        subject = await get_scoped(
            session, Broadcast, actor.workspace_id, broadcast_id, "broadcast"
        )
        jobs = select(Job.id).where(Job.broadcast_id == subject.id)
    else:
        raise ValueError("name an event or a broadcast")
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.workspace_id == actor.workspace_id,
            Delivery.job_id.in_(jobs),
            Delivery.status == DeliveryStatus.unknown.value,
        )
        .values(status=DeliveryStatus.deferred.value, next_attempt_at=now, last_error=RESENT)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    count = len(result.all())
    if count:
        record_by(session, actor, DELIVERIES_RESENT, subject, f"resent {count} of unknown outcome")
    return count


async def _subject_jobs(
    session: AsyncSession,
    actor: Actor,
    event_id: uuid.UUID | None,
    broadcast_id: uuid.UUID | None,
) -> tuple[Event | Broadcast, Select[uuid.UUID]]:
    subject: Event | Broadcast
    if event_id is not None:
        subject = await get_scoped(session, Event, actor.workspace_id, event_id, "event")
        return subject, select(Job.id).where(Job.event_id == subject.id)
    if broadcast_id is not None:
        subject = await get_scoped(
            session, Broadcast, actor.workspace_id, broadcast_id, "broadcast"
        )
        return subject, select(Job.id).where(Job.broadcast_id == subject.id)
    raise ValueError("name an event or a broadcast")


async def not_joined_members(
    session: AsyncSession,
    actor: Actor,
    *,
    event_id: uuid.UUID | None = None,
    broadcast_id: uuid.UUID | None = None,
) -> list[Member]:
    """Members of an event's or a broadcast's audience whom the bot could not write to because
    they never opened it, and who still have not (no message to them was sent since)."""
    actor.require(Action.manage_events)
    _, jobs = await _subject_jobs(session, actor, event_id, broadcast_id)
    refused = (
        select(Delivery.member_id, func.max(Delivery.created_at).label("at"))
        .where(
            Delivery.workspace_id == actor.workspace_id,
            Delivery.job_id.in_(jobs),
            Delivery.status == DeliveryStatus.not_joined.value,
        )
        .group_by(Delivery.member_id)
        .subquery()
    )
    later = aliased(Delivery)
    reached_since = (
        select(later.id)
        .where(
            later.member_id == refused.c.member_id,
            later.channel == Messenger.telegram.value,
            later.status == DeliveryStatus.sent.value,
            later.sent_at > refused.c.at,
        )
        .exists()
    )
    return list(
        await session.scalars(
            select(Member)
            .join(refused, refused.c.member_id == Member.id)
            .where(has_account(Messenger.telegram), ~reached_since)
            .order_by(Member.name, Member.id)
        )
    )
