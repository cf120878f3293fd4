"""The engine's tables: jobs (what must be sent, and when) and deliveries (one message of one job
to one member on one channel). Postgres is the source of truth; Redis only carries them.

A job's ``kind`` names the kind of subject it is about (core.delivery.subjects): the engine reads
it only to find that subject, never to decide anything itself.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin, TimestampMixin, str_enum


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
            "kind IN ('reminder', 'confirmation_request', 'nudge', 'deadline_summary', "
            "'broadcast', 'journey_message', 'journey_alert', 'daily_report')",
            name="kind",
        ),
        CheckConstraint(
            "num_nonnulls(event_id, broadcast_id, journey_run_id, lead_report_id) = 1",
            name="subject",
        ),
        Index("ix_jobs_due", "status", "due_at"),
    )

    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    # A journey's message or alert names the run it belongs to (the engine does not look).
    journey_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("journey_runs.id", ondelete="CASCADE"), index=True
    )
    # A lead's daily report (core.insights.daily_report).
    lead_report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lead_reports.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    occurrence: Mapped[str] = mapped_column(String(16), default="")
    occurrence_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    offset_minutes: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[JobStatus] = mapped_column(
        str_enum(JobStatus, "status"), default=JobStatus.pending
    )
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
    not_joined = "not_joined"  # never opened the bot: bots cannot write first (invite them)
    failed = "failed"
    cancelled = "cancelled"  # a lead cancelled the broadcast before this one went
    # Handed to the channel by a worker that never recorded the answer (killed, database gone):
    # it may or may not have arrived. Set once the job's lease runs out; a lead may resend.
    unknown = "unknown"


class Delivery(TenantMixin, Base):
    """One message of one job to one member on one channel: at most one, ever.

    Rows are made ``queued`` a part of the audience at a time, then moved to ``sending`` (and
    committed) a batch at a time just before the provider is called, and to their outcome right
    after. A worker that dies leaves its queued rows for the next attempt of the job, and never
    sends a ``sending`` row again: those become ``unknown`` once the job's lease has run out
    (core.delivery.deliveries.mark_unknown), and only a lead sends them again. A crash can leave a few messages of
    unknown fate; it can never double one.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("job_id", "member_id", "channel"),
        Index("ix_deliveries_deferred", "status", "next_attempt_at"),
        Index(
            "ix_deliveries_handed",
            "handed_at",
            postgresql_where=text("status = 'sending'"),
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, "status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the row was last committed as ``sending``: the limbo sweep finds rows left there.
    handed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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


class DeliveryTally(Base):
    """Deliveries counted by workspace, day, channel, kind, status and reason: the rollup the
    statistics read, so they stay fast however long the history grows.

    Kept exact by statement-level triggers on ``deliveries`` (migration 0010): each insert and
    update moves its rows from their old bucket to the new one in the same transaction. A row's
    day is the UTC day it was sent, or made if it never was. Deleting an event or a member does
    not take back what was sent.
    """

    __tablename__ = "delivery_tallies"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class SendSecond(Base):
    """Messages sent in each second, per workspace and channel (by the same triggers): the busiest
    second of a day, against the workspace's per-second limit."""

    __tablename__ = "send_seconds"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    second: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
