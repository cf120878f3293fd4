"""Broadcasts: a lead's message to an audience, now or at a time, carried out by one job.

The wording (default text, per-language variants, link buttons) is given directly or copied from a
template, and checked when the broadcast is made (core.notify.templates). "At 09:00 local for
everyone" (``local_time``) is one job due when the earliest zone reaches that time; each member's
delivery waits (deferred, reason "local time") until their own zone does.

``Idempotency-Key``: the same key within 24 hours returns the broadcast the first request made and
sends nothing again; a different request under a used key is a 409.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, audience_query, validate_audience
from core.audit import record_by, short
from core.clock import utcnow
from core.delivery.models import Delivery, DeliveryStatus, Job, JobStatus
from core.errors import Conflict, Invalid
from core.notify.models import Broadcast, BroadcastStatus, IdempotencyKey, JobKind, MessageTemplate
from core.notify.templates import (
    Buttons,
    LinkButton,
    Text,
    Variants,
    buttons_json,
    check_content,
    wordings,
)
from core.scoping import get_scoped
from core.teams.models import Member, MemberStatus, Workspace
from core.teams.permissions import Action, Actor
from core.teams.schemas import _In
from core.timezones import EARLIEST_ZONE, LATEST_ZONE

# A broadcast "at" a time a little in the past (a slow form, clock skew) simply goes now.
PAST_GRACE = timedelta(minutes=5)
IDEMPOTENCY_WINDOW = timedelta(hours=24)


class BroadcastCreate(_In):
    audience: AudienceRule
    text: Text | None = Field(
        default=None,
        description="Jinja2: {{ member.first_name }}, {{ member.name }}; or give template_id",
    )
    template_id: uuid.UUID | None = Field(
        default=None, description="Copy text, variants and buttons from this template"
    )
    variants: Variants | None = None
    buttons: Buttons | None = None
    send_at: datetime | None = Field(
        default=None,
        description="Now if omitted; without an offset, in the workspace's zone (or, with "
        "local_time, in each member's)",
    )
    local_time: bool = Field(
        default=False,
        description="send_at is a wall-clock time in each member's own zone (offset ignored)",
    )


class Progress(BaseModel):
    queued: int = 0
    sending: int = 0
    sent: int = 0
    deferred: int = 0
    unreachable: int = 0
    not_joined: int = Field(
        0, description="Members who never opened the bot: a bot cannot write first; invite them"
    )
    failed: int = 0
    cancelled: int = 0
    unknown: int = Field(
        0,
        description="Handed to the messenger by a worker that stopped before recording the "
        "answer: may or may not have arrived (a lead may resend them)",
    )


# A date and time with no offset (it is read in each member's own zone): JSON Schema's date-time
# demands an offset, so it is published as a pattern.
WallClock = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$",
            "examples": ["2026-12-01T09:00:00"],
        }
    ),
]


class BroadcastState(StrEnum):
    """Where a broadcast stands, as a lead reads it."""

    scheduled = "scheduled"  # waiting for its time
    sending = "sending"  # going out, or messages still wait (a member's local time, quiet hours,
    # the daily limit, a retry)
    done = "done"  # every message has its outcome: sent, unreachable, failed
    cancelled = "cancelled"


def _state(broadcast: Broadcast, job: Job, progress: Progress) -> BroadcastState:
    if broadcast.status == BroadcastStatus.cancelled.value:
        return BroadcastState.cancelled
    if job.status == JobStatus.pending.value and job.due_at > utcnow():
        return BroadcastState.scheduled
    if job.status == JobStatus.pending.value:
        return BroadcastState.sending  # due: the scheduler's next pass takes it
    if job.status == JobStatus.claimed.value or progress.queued or progress.deferred:
        return BroadcastState.sending
    return BroadcastState.done


class BroadcastOut(BaseModel):
    id: uuid.UUID
    text: str
    variants: dict[str, str]
    buttons: list[LinkButton]
    template_id: uuid.UUID | None
    audience: AudienceRule
    send_at: datetime = Field(description="When the job goes (the earliest zone, in local time)")
    local_time: WallClock | None = Field(description="The wall-clock time in each member's zone")
    status: BroadcastState
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
    progress = Progress(**counts)
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
        variants=broadcast.variants,
        buttons=[LinkButton.model_validate(b) for b in broadcast.buttons],
        template_id=broadcast.template_id,
        audience=rule,
        send_at=broadcast.send_at,
        local_time=broadcast.local_time,
        status=_state(broadcast, job, progress),
        job_status=JobStatus(job.status),
        created_by=broadcast.created_by,
        created_at=broadcast.created_at,
        recipients=reachable or 0,
        progress=progress,
    )


class _Replay(Exception):
    """Another request with the same Idempotency-Key committed first."""


def _request_hash(data: BroadcastCreate) -> str:
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


async def _earlier(
    session: AsyncSession, actor: Actor, key: str, digest: str
) -> BroadcastOut | None:
    """The broadcast an earlier request with this key made, within the window."""
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.workspace_id == actor.workspace_id, IdempotencyKey.key == key
        )
    )
    if row is None:
        return None
    if row.created_at < utcnow() - IDEMPOTENCY_WINDOW:
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
        return None
    if row.request_hash != digest:
        raise Conflict("Idempotency-Key", "was used in the last 24 hours for a different request")
    broadcast = await session.get_one(Broadcast, row.broadcast_id)
    return await _view(session, broadcast)


async def create_broadcast(
    session: AsyncSession,
    actor: Actor,
    data: BroadcastCreate,
    idempotency_key: str | None = None,
) -> tuple[BroadcastOut, bool]:
    """Make the broadcast and its job. Returns it and whether it was made by an earlier request
    with the same ``idempotency_key`` (then nothing new is made or sent)."""
    actor.require(Action.manage_events)
    if idempotency_key is None:
        return await _create(session, actor, data), False
    if not 1 <= len(idempotency_key) <= 200:
        raise Invalid("Idempotency-Key", "give 1 to 200 characters")
    digest = _request_hash(data)
    earlier = await _earlier(session, actor, idempotency_key, digest)
    if earlier is not None:
        return earlier, True
    try:
        async with session.begin_nested():
            out = await _create(session, actor, data)
            claimed = await session.scalar(
                insert(IdempotencyKey)
                .values(
                    id=uuid.uuid4(),
                    workspace_id=actor.workspace_id,
                    key=idempotency_key,
                    request_hash=digest,
                    broadcast_id=out.id,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing()
                .returning(IdempotencyKey.id)
            )
            if claimed is None:
                raise _Replay
    except _Replay:
        earlier = await _earlier(session, actor, idempotency_key, digest)
        assert earlier is not None
        return earlier, True
    return out, False


async def _content(
    session: AsyncSession, actor: Actor, data: BroadcastCreate
) -> tuple[str, dict[str, str], list[dict[str, str]]]:
    """Text, variants and buttons: given, or the template's (given ones win)."""
    if data.template_id is not None:
        template = await get_scoped(
            session, MessageTemplate, actor.workspace_id, data.template_id, "template"
        )
        text = data.text or template.text
        variants = wordings(data.variants) if data.variants is not None else template.variants
        buttons = buttons_json(data.buttons) if data.buttons is not None else list(template.buttons)
        return text, variants, buttons
    if data.text is None:
        raise Invalid("text", "give the text, or a template_id")
    return data.text, wordings(data.variants), buttons_json(data.buttons or [])


def _when(
    data: BroadcastCreate, now: datetime, workspace_zone: str
) -> tuple[datetime, datetime | None]:
    """When the job goes, and the local wall-clock time if every member gets it in their zone.
    A time without an offset is read in the workspace's zone."""
    if data.local_time:
        if data.send_at is None:
            raise Invalid("send_at", "give the local time everyone should get it, e.g. 09:00")
        wall = data.send_at.replace(tzinfo=None)
        if wall.replace(tzinfo=UTC) + LATEST_ZONE < now - PAST_GRACE:
            raise Invalid("send_at", "that time has passed in every time zone")
        return max(wall.replace(tzinfo=UTC) - EARLIEST_ZONE, now), wall
    send_at = data.send_at or now
    if send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=ZoneInfo(workspace_zone))
    if send_at < now - PAST_GRACE:
        raise Invalid("send_at", "is in the past")
    return max(send_at, now), None


async def _create(session: AsyncSession, actor: Actor, data: BroadcastCreate) -> BroadcastOut:
    await validate_audience(session, actor.workspace_id, data.audience)
    text, variants, buttons = await _content(session, actor, data)
    check_content(text, variants)
    now = utcnow()
    workspace = await session.get_one(Workspace, actor.workspace_id)
    send_at, local_time = _when(data, now, workspace.timezone)
    broadcast = Broadcast(
        workspace_id=actor.workspace_id,
        audience=data.audience.model_dump(mode="json"),
        text=text,
        variants=variants,
        buttons=buttons,
        template_id=data.template_id,
        send_at=send_at,
        local_time=local_time,
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
    out = await _view(session, broadcast)
    at = (
        f"{local_time:%Y-%m-%d %H:%M} local time" if local_time else f"{send_at:%Y-%m-%d %H:%M} UTC"
    )
    record_by(
        session,
        actor,
        "broadcast.created",
        broadcast,
        f"broadcast to {out.recipients} people at {at}: {short(text)}",
    )
    return out


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
    # Deliveries still waiting (for a member's local time, quiet hours, a retry) never go.
    waiting = await session.execute(
        update(Delivery)
        .where(
            Delivery.job_id.in_(select(Job.id).where(Job.broadcast_id == broadcast.id)),
            Delivery.status.in_([DeliveryStatus.queued.value, DeliveryStatus.deferred.value]),
        )
        .values(status=DeliveryStatus.cancelled.value, next_attempt_at=None)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    held = len(waiting.all())
    if stopped.first() is None and not held and broadcast.status != BroadcastStatus.cancelled.value:
        raise Conflict("broadcast", "it has already been sent")
    if broadcast.status != BroadcastStatus.cancelled.value:
        record_by(
            session, actor, "broadcast.cancelled", broadcast, f"broadcast: {short(broadcast.text)}"
        )
    broadcast.status = BroadcastStatus.cancelled
    broadcast.cancelled_at = broadcast.cancelled_at or utcnow()
    await session.flush()
    return await _view(session, broadcast)


async def recent_broadcasts(
    session: AsyncSession, actor: Actor, limit: int = 10
) -> list[uuid.UUID]:
    """The workspace's latest broadcasts, newest first."""
    actor.require(Action.read)
    return list(
        await session.scalars(
            select(Broadcast.id)
            .where(Broadcast.workspace_id == actor.workspace_id)
            .order_by(Broadcast.created_at.desc())
            .limit(limit)
        )
    )
