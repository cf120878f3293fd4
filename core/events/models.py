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
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TenantMixin, TimestampMixin


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
        CheckConstraint("status IN ('scheduled', 'cancelled')", name="status"),
        CheckConstraint("confirm_before_minutes >= 0", name="confirm_before_minutes"),
        Index("ix_events_workspace_starts_at", "workspace_id", "starts_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    rrule: Mapped[str | None] = mapped_column(String(500))
    exdates: Mapped[list[datetime]] = mapped_column(ARRAY(DateTime(timezone=True)), default=list)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    reminder_offsets: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    # Minutes before each occurrence's start by which members should answer; NULL = no request.
    confirm_before_minutes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.scheduled.value)
    created_by: Mapped[str] = mapped_column(String(200), default="")
