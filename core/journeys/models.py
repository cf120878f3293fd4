"""Journeys: automatic chains of steps a member goes through (welcome → wait → ask → …).

A journey's definition (trigger, steps) is kept as validated JSON on the row, so a save is one
atomic write and two leads editing at once are told apart by ``version``. Each member inside it
has a run: where they are (a step's stable ``key``), since when, and when the runner must look at
them next. Everything that happens to a run is in the run log; the tallies beside it are the
statistics, kept exact in the same transaction as each move.

Signals (facts another system posts about a member) live here too: journeys enter and branch on
them, and every signal counts as the member's activity.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin, TimestampMixin, str_enum


class Signal(TenantMixin, Base):
    __tablename__ = "signals"
    __table_args__ = (
        # A client's own id for the signal: posting it again changes nothing (retries are safe).
        UniqueConstraint("workspace_id", "key"),
        Index("ix_signals_member_received", "member_id", "received_at"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    key: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class JourneyStatus(StrEnum):
    draft = "draft"  # being built: nobody enters
    active = "active"
    paused = "paused"  # nobody enters, nobody moves on; runs wait where they are
    archived = "archived"  # over: its runs were taken out


class Reentry(StrEnum):
    once = "once"  # a member goes through it at most once, ever
    after_end = "after_end"  # a trigger while inside is kept: they go again once this run ends
    never_inside = "never_inside"  # a trigger while inside is ignored; later ones count


class Journey(TenantMixin, TimestampMixin, Base):
    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[JourneyStatus] = mapped_column(
        str_enum(JourneyStatus, "status"), default=JourneyStatus.draft
    )
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reentry: Mapped[Reentry] = mapped_column(str_enum(Reentry, "reentry"), default=Reentry.once)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # Runs at one step longer than this are "stuck" in the statistics.
    stuck_after_hours: Mapped[int] = mapped_column(Integer, default=72, server_default="72")
    # Signs the journey's webhook calls (HMAC-SHA256); shown to those who manage the journey.
    webhook_secret: Mapped[str] = mapped_column(String(64))
    # Bumped by every save: an edit made against an older version is refused (409).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class RunStatus(StrEnum):
    active = "active"  # inside: at a step, maybe waiting there
    finished = "finished"  # went through to the end
    left = "left"  # taken out (by a lead, an edit, the journey's archiving, the member's deletion)
    failed = "failed"  # a step could not be carried out (reason in the log)


class RunStage(StrEnum):
    enter = "enter"  # the step is still to be carried out
    wait = "wait"  # carried out; waiting for its time (or a reply) to come


class JourneyRun(TenantMixin, Base):
    """One member's way through one journey."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        # One firing of a trigger makes one run, however often it is reported.
        UniqueConstraint("journey_id", "member_id", "entry_key"),
        # Never two runs of one journey at once for a member.
        Index(
            "uq_journey_runs_inside",
            "journey_id",
            "member_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_journey_runs_due", "next_at", postgresql_where=text("status = 'active'")),
        Index(
            "ix_journey_runs_at_step",
            "journey_id",
            "step_key",
            "step_since",
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_journey_runs_member", "member_id", "status"),
    )

    journey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[RunStatus] = mapped_column(
        str_enum(RunStatus, "status"), default=RunStatus.active
    )
    step_key: Mapped[str | None] = mapped_column(String(64))
    step_since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Counts every step entered: (run, visit) names one carrying-out of one step, the key that
    # makes it happen once however many workers look at the run.
    visit: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    stage: Mapped[RunStage] = mapped_column(str_enum(RunStage, "stage", 8))
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Times the current step was tried and must be tried again (a webhook that failed).
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    # after_end re-entry: a trigger came while inside; start again when this run ends.
    again: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(Text)


class JourneyLog(Base):
    """Everything that happened in a run: steps entered, actions, branches, messages (with
    their job), moves by hand (with who), failures. Append-only."""

    __tablename__ = "journey_log"
    __table_args__ = (
        Index("ix_journey_log_run", "run_id", "id"),
        Index("ix_journey_log_member_at", "member_id", "at"),
        # A step's message is made once per (run, visit), whoever carries the step out.
        Index(
            "uq_journey_log_sent",
            "run_id",
            "visit",
            unique=True,
            postgresql_where=text("action = 'sent'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    journey_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("journey_runs.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    step_key: Mapped[str | None] = mapped_column(String(64))
    visit: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JourneyStepTally(Base):
    """Per step: how many reached it, went on from it, left or failed there. Kept exact in the
    transaction of every move (core.journeys.runs), so statistics never scan the log."""

    __tablename__ = "journey_step_tallies"

    journey_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    step_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    reached: Mapped[int] = mapped_column(BigInteger, default=0)
    went_on: Mapped[int] = mapped_column(BigInteger, default=0)
    left: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)


class JourneyDwell(Base):
    """How long runs stayed at a step before going on, as a histogram of 5 %-wide buckets: the
    median time at a step to within 2.5 %, read from a few dozen rows."""

    __tablename__ = "journey_dwell"

    journey_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    step_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class JourneyDay(Base):
    """Per UTC day: runs entered, finished, left and failed."""

    __tablename__ = "journey_days"

    journey_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    entered: Mapped[int] = mapped_column(BigInteger, default=0)
    finished: Mapped[int] = mapped_column(BigInteger, default=0)
    left: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)


class JourneyStepDay(Base):
    """Per UTC day and step: how many reached it (the leads' daily report, the funnel by day)."""

    __tablename__ = "journey_step_days"

    journey_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    step_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reached: Mapped[int] = mapped_column(BigInteger, default=0)
