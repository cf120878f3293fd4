"""What did we send to this person? Every delivery and its outcome, every answer, every tag
change and every change to their status, newest first, from the rows that record them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import AuditEntry
from core.delivery.models import Delivery, Job
from core.events.models import Confirmation, Event
from core.journeys.models import Signal
from core.notify.models import Broadcast
from core.scoping import get_scoped
from core.teams.models import Member, TagChange
from core.teams.permissions import Action, Actor

ANSWER_WORDS = {"going": "going", "not_going": "not going", "maybe": "maybe"}


class TimelineItem(BaseModel):
    at: datetime
    kind: Literal["delivery", "answer", "tag", "change", "signal"]
    summary: str
    status: str | None = None
    channel: str | None = None
    reason: str | None = None


class Timeline(BaseModel):
    member_id: uuid.UUID
    member_name: str
    items: list[TimelineItem]


async def member_timeline(
    session: AsyncSession, actor: Actor, member_id: uuid.UUID, limit: int = 200
) -> Timeline:
    actor.require(Action.manage_events)
    member = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    items: list[TimelineItem] = []
    about = func.coalesce(Event.title, func.left(Broadcast.text, 80))
    deliveries = await session.execute(
        select(
            func.coalesce(Delivery.sent_at, Delivery.created_at),
            Job.kind,
            about,
            Delivery.status,
            Delivery.channel,
            Delivery.last_error,
        )
        .join(Job, Job.id == Delivery.job_id)
        .outerjoin(Event, Event.id == Job.event_id)
        .outerjoin(Broadcast, Broadcast.id == Job.broadcast_id)
        .where(Delivery.member_id == member.id)
        .order_by(func.coalesce(Delivery.sent_at, Delivery.created_at).desc())
        .limit(limit)
    )
    for at, kind, title, status, channel, reason in deliveries:
        items.append(
            TimelineItem(
                at=at,
                kind="delivery",
                summary=f"{kind.replace('_', ' ')}: {title}",
                status=status,
                channel=channel,
                reason=reason,
            )
        )
    answers = await session.execute(
        select(Confirmation.answered_at, Confirmation.answer, Event.title, Confirmation.occurrence)
        .join(Event, Event.id == Confirmation.event_id)
        .where(Confirmation.member_id == member.id)
        .order_by(Confirmation.answered_at.desc())
        .limit(limit)
    )
    for at, answer, title, occurrence in answers:
        which = f" ({occurrence})" if occurrence else ""
        items.append(
            TimelineItem(at=at, kind="answer", summary=f"{ANSWER_WORDS[answer]}: {title}{which}")
        )
    tags = await session.execute(
        select(TagChange.at, TagChange.action, TagChange.tag_name, TagChange.actor)
        .where(TagChange.member_id == member.id)
        .order_by(TagChange.at.desc())
        .limit(limit)
    )
    for at, action, name, by in tags:
        items.append(TimelineItem(at=at, kind="tag", summary=f"tag {name!r} {action} by {by}"))
    changes = await session.execute(
        select(AuditEntry.at, AuditEntry.summary, AuditEntry.actor)
        .where(AuditEntry.member_id == member.id, AuditEntry.workspace_id == actor.workspace_id)
        .order_by(AuditEntry.at.desc())
        .limit(limit)
    )
    for at, summary, by in changes:
        items.append(TimelineItem(at=at, kind="change", summary=f"{summary} — {by}"))
    signals = await session.execute(
        select(Signal.received_at, Signal.name, Signal.value, Signal.source)
        .where(Signal.member_id == member.id, Signal.workspace_id == actor.workspace_id)
        .order_by(Signal.received_at.desc())
        .limit(limit)
    )
    for at, name, value, source in signals:
        shown = f"signal {name}" + (f" = {value:g}" if value is not None else "")
        items.append(TimelineItem(at=at, kind="signal", summary=f"{shown} — {source}"))
    items.sort(key=lambda item: item.at, reverse=True)
    return Timeline(member_id=member.id, member_name=member.name, items=items[:limit])
