"""Broadcasts: a lead's message to an audience, now or at a time, carried out by one job.

The text is a sandboxed Jinja2 template with the member's variables; it is checked when the
broadcast is made, so a typo is a 422 naming ``text`` and never a failed send later.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.errors import Conflict, Invalid
from core.notify.audience import AudienceRule, audience_query, validate_audience
from core.notify.messages import check_broadcast_template
from core.notify.models import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    Job,
    JobKind,
    JobStatus,
)
from core.scoping import get_scoped
from core.teams.models import Member, MemberStatus
from core.teams.permissions import Action, Actor
from core.teams.schemas import _In

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
# A broadcast "at" a time a little in the past (a slow form, clock skew) simply goes now.
PAST_GRACE = timedelta(minutes=5)


class BroadcastCreate(_In):
    audience: AudienceRule
    text: Text = Field(description="Jinja2: {{ member.first_name }}, {{ member.name }}")
    send_at: datetime | None = Field(default=None, description="With an offset; now if omitted")


class Progress(BaseModel):
    queued: int = 0
    sending: int = 0
    sent: int = 0
    deferred: int = 0
    unreachable: int = 0
    failed: int = 0


class BroadcastOut(BaseModel):
    id: uuid.UUID
    text: str
    audience: AudienceRule
    send_at: datetime
    status: BroadcastStatus
    job_status: JobStatus
    created_by: str
    created_at: datetime
    recipients: int = Field(description="Members the audience reaches now who can get messages")
    progress: Progress


async def _view(session: AsyncSession, broadcast: Broadcast) -> BroadcastOut:
    job = await session.scalar(select(Job).where(Job.broadcast_id == broadcast.id))
    assert job is not None
    counts = dict(
        (
            await session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.job_id == job.id)
                .group_by(Delivery.status)
            )
        ).all()
    )
    rule = AudienceRule.model_validate(broadcast.audience)
    reachable = await session.scalar(
        audience_query(broadcast.workspace_id, rule)
        .where(Member.status == MemberStatus.active.value)
        .with_only_columns(func.count())
        .order_by(None)
    )
    return BroadcastOut(
        id=broadcast.id,
        text=broadcast.text,
        audience=rule,
        send_at=broadcast.send_at,
        status=BroadcastStatus(broadcast.status),
        job_status=JobStatus(job.status),
        created_by=broadcast.created_by,
        created_at=broadcast.created_at,
        recipients=reachable or 0,
        progress=Progress(**counts),
    )


async def create_broadcast(
    session: AsyncSession, actor: Actor, data: BroadcastCreate
) -> BroadcastOut:
    actor.require(Action.manage_events)
    await validate_audience(session, actor.workspace_id, data.audience)
    try:
        check_broadcast_template(data.text)
    except ValueError as exc:
        raise Invalid("text", str(exc)) from None
    now = utcnow()
    send_at = data.send_at or now
    if send_at.tzinfo is None:
        raise Invalid("send_at", "give a time with an offset, e.g. 2026-12-01T09:00:00+03:00")
    if send_at < now - PAST_GRACE:
        raise Invalid("send_at", "is in the past")
    send_at = max(send_at, now)
    broadcast = Broadcast(
        workspace_id=actor.workspace_id,
        audience=data.audience.model_dump(mode="json"),
        text=data.text,
        send_at=send_at,
        status=BroadcastStatus.scheduled.value,
        created_by=actor.label,
        created_at=now,
    )
    session.add(broadcast)
    await session.flush()
    session.add(
        Job(
            workspace_id=actor.workspace_id,
            broadcast_id=broadcast.id,
            kind=JobKind.broadcast.value,
            occurrence="",
            occurrence_start=send_at,
            due_at=send_at,
            status=JobStatus.pending.value,
            idempotency_key=f"broadcast:{broadcast.id}",
        )
    )
    await session.flush()
    return await _view(session, broadcast)


async def get_broadcast(
    session: AsyncSession, actor: Actor, broadcast_id: uuid.UUID
) -> BroadcastOut:
    """The broadcast and how far it has gone (queued, sent, failed, unreachable…)."""
    actor.require(Action.read)
    broadcast = await get_scoped(session, Broadcast, actor.workspace_id, broadcast_id, "broadcast")
    return await _view(session, broadcast)


async def cancel_broadcast(
    session: AsyncSession, actor: Actor, broadcast_id: uuid.UUID
) -> BroadcastOut:
    """Stop a broadcast: before its time nothing goes; while it goes, the rest does not."""
    actor.require(Action.manage_events)
    broadcast = await get_scoped(session, Broadcast, actor.workspace_id, broadcast_id, "broadcast")
    stopped = await session.execute(
        update(Job)
        .where(
            Job.broadcast_id == broadcast.id,
            Job.status.in_([JobStatus.pending.value, JobStatus.claimed.value]),
        )
        .values(status=JobStatus.cancelled.value)
        .returning(Job.id)
    )
    if stopped.first() is None and broadcast.status != BroadcastStatus.cancelled.value:
        raise Conflict("broadcast", "it has already been sent")
    broadcast.status = BroadcastStatus.cancelled.value
    broadcast.cancelled_at = broadcast.cancelled_at or utcnow()
    await session.flush()
    return await _view(session, broadcast)
