"""Signals: facts another system posts about a member (``progress`` 20, ``bought``), kept as
they came. Journeys (the automatic chains of #18) enter and branch on them; leads see them in the
member's timeline; every signal counts as the member's activity."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin


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
