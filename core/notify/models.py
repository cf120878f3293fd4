"""What is sent: broadcasts, message templates, mutes, group-chat posts, and the kinds of job
about events and broadcasts (core.notify.subjects). The engine's own tables are core.delivery.models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin, TimestampMixin, str_enum


class JobKind(StrEnum):
    reminder = "reminder"
    confirmation_request = "confirmation_request"
    nudge = "nudge"
    deadline_summary = "deadline_summary"
    broadcast = "broadcast"


class BroadcastStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"


class Broadcast(TenantMixin, Base):
    """A message a lead sends to an audience, now or at a time; its job carries it out.

    ``text`` is the default wording and ``variants`` the per-language ones (``{"ru": "…"}``), copied
    from a template when one is used, so editing the template later never changes what was sent.
    With ``local_time`` set, ``send_at`` is the wall-clock time in each member's own zone
    (``local_time`` holds it, naive) and the job goes when the earliest zone reaches it.
    """

    __tablename__ = "broadcasts"

    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    text: Mapped[str] = mapped_column(Text)
    variants: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default="{}")
    buttons: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list, server_default="[]")
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("message_templates.id", ondelete="SET NULL")
    )
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    local_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    status: Mapped[BroadcastStatus] = mapped_column(
        str_enum(BroadcastStatus, "status"), default=BroadcastStatus.scheduled
    )
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageTemplate(TenantMixin, TimestampMixin, Base):
    """A workspace's reusable message: default text, per-language variants, link buttons."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    variants: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default="{}")
    buttons: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list, server_default="[]")


class IdempotencyKey(TenantMixin, Base):
    """An ``Idempotency-Key`` a client sent with a POST, and what that POST made (24 h)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    broadcast_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, index=True
    )


class EventMute(TenantMixin, Base):
    """A member asked to hear nothing more about one event (its reminders, requests, nudges)."""

    __tablename__ = "event_mutes"
    __table_args__ = (UniqueConstraint("event_id", "member_id"),)

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    muted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class ChatPost(TenantMixin, Base):
    """An announcement of one job's occurrence in one linked group chat: at most one, ever."""

    __tablename__ = "chat_posts"
    __table_args__ = (UniqueConstraint("job_id", "messenger", "chat_id"),)

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    messenger: Mapped[str] = mapped_column(
        String(16), default="telegram", server_default="telegram"
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="sending")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
