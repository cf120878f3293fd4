"""Jobs: what must be sent, and when. Postgres is the source of truth; Redis only carries them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TenantMixin, TimestampMixin, utcnow


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
    """A message a lead sends to an audience, now or at a time; its job carries it out."""

    __tablename__ = "broadcasts"
    __table_args__ = (CheckConstraint("status IN ('scheduled', 'cancelled')", name="status"),)

    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    text: Mapped[str] = mapped_column(Text)
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.scheduled.value)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobStatus(StrEnum):
    pending = "pending"
    claimed = "claimed"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"


class Job(TenantMixin, TimestampMixin, Base):
    """One thing to do at ``due_at`` for one occurrence of an event.

    ``idempotency_key`` names the job by what it is (kind, event, occurrence and its start, offset),
    so planning twice never makes two, and moving an event makes new jobs rather than reusing sent
    ones.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'claimed', 'done', 'cancelled', 'failed')", name="status"
        ),
        CheckConstraint(
            "kind IN ('reminder', 'confirmation_request', 'nudge', 'deadline_summary', "
            "'broadcast')",
            name="kind",
        ),
        CheckConstraint("(event_id IS NULL) <> (broadcast_id IS NULL)", name="subject"),
        Index("ix_jobs_due", "status", "due_at"),
    )

    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    occurrence: Mapped[str] = mapped_column(String(16), default="")
    occurrence_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    offset_minutes: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.pending.value)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryStatus(StrEnum):
    queued = "queued"  # planned for this job, not yet handed to the channel
    sending = "sending"  # handed to the channel; never handed again
    sent = "sent"
    deferred = "deferred"
    unreachable = "unreachable"
    failed = "failed"


class Delivery(TenantMixin, Base):
    """One message of one job to one member on one channel: at most one, ever.

    Rows are made ``queued`` for the whole audience at once, then moved to ``sending`` (and
    committed) a few at a time just before the provider is called. A worker that dies leaves its
    queued rows for the next attempt of the job, and never sends a ``sending`` row again: a crash
    can lose the few messages on the wire at that moment, it can never double one.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("job_id", "member_id", "channel"),
        CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'deferred', 'unreachable', 'failed')",
            name="status",
        ),
        Index("ix_deliveries_deferred", "status", "next_attempt_at"),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChannelBlock(TenantMixin, Base):
    """A member cannot be reached on one channel (blocked the bot, bounced mail).

    Per channel, so a member who blocked the bot still gets email. The member keeps their tags,
    groups and history; the row goes when they come back (``/start`` in the bot).
    """

    __tablename__ = "channel_blocks"
    __table_args__ = (UniqueConstraint("member_id", "channel"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
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
    __table_args__ = (UniqueConstraint("job_id", "chat_id"),)

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="sending")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
