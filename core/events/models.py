"""The events table."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
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
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin, TimestampMixin, str_enum


class EventStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"


class Event(TenantMixin, TimestampMixin, Base):
    """An event. Times are UTC instants; ``timezone`` is the zone it was planned in.

    All-day events keep their calendar dates in ``start_date``/``end_date`` (end inclusive) and
    ``starts_at``/``ends_at`` hold local midnights of those days, so range queries need no branch.
    """

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("confirm_before_minutes >= 0", name="confirm_before_minutes"),
        Index("ix_events_workspace_starts_at", "workspace_id", "starts_at"),
        UniqueConstraint("workspace_id", "ics_uid"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The start as given, in wall-clock time of ``timezone`` (no offset): a series repeats at it,
    # even when the first one falls in a DST gap (then ``starts_at`` reads it with the offset
    # before the gap). Null for all-day events.
    starts_local: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    rrule: Mapped[str | None] = mapped_column(String(500))
    exdates: Mapped[list[datetime]] = mapped_column(ARRAY(DateTime(timezone=True)), default=list)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    reminder_offsets: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    # Minutes before each occurrence's start by which members should answer; NULL = no request.
    confirm_before_minutes: Mapped[int | None] = mapped_column(Integer)
    # Whether members of the audience may see who else said they are going.
    show_attendees: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    status: Mapped[EventStatus] = mapped_column(
        str_enum(EventStatus, "status"), default=EventStatus.scheduled
    )
    created_by: Mapped[str] = mapped_column(String(200), default="")
    # Grows on every change, so calendar apps replace their copy (RFC 5545 SEQUENCE).
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Deleted events linger for a while so calendar feeds can show them as cancelled.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The UID of the calendar file the event was imported from (re-imports update it).
    ics_uid: Mapped[str | None] = mapped_column(String(255))
    # Jobs exist for occurrences starting before this instant; the scheduler extends it.
    jobs_planned_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventOverride(TenantMixin, Base):
    """One occurrence of a recurring event moved to another time (RFC 5545 RECURRENCE-ID)."""

    __tablename__ = "event_overrides"
    __table_args__ = (
        UniqueConstraint("event_id", "recurrence_id"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    recurrence_id: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="The start the occurrence had by the rule (UTC)"
    )
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Answer(StrEnum):
    going = "going"
    not_going = "not_going"
    maybe = "maybe"


class Confirmation(Base):
    """A member's answer to an event (one-off) or to one occurrence of it (recurring).

    ``occurrence`` is "" for a one-off event, else the occurrence's RECURRENCE-ID in UTC
    (``20261207T070000Z``), so an answer belongs to the occurrence even if that occurrence is moved.
    """

    __tablename__ = "confirmations"
    __table_args__ = (Index("ix_confirmations_workspace_answered", "workspace_id", "answered_at"),)

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    occurrence: Mapped[str] = mapped_column(String(16), primary_key=True, default="")
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    answer: Mapped[Answer] = mapped_column(str_enum(Answer, "answer"))
    answered_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
