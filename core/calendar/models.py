"""Calendar feed tokens: the secret part of a feed URL, stored as SHA-256."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin, str_enum
from core.teams.models import Group, Member, Workspace


class FeedKind(StrEnum):
    member = "member"
    group = "group"
    event = "event"


class FeedToken(TenantMixin, Base):
    """Grants read access to one feed: a member's, a group's, or one event's."""

    __tablename__ = "feed_tokens"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'member') = (member_id IS NOT NULL)"
            " AND (kind = 'group') = (group_id IS NOT NULL)"
            " AND (kind = 'event') = (event_id IS NOT NULL)",
            name="one_owner",
        ),
    )

    kind: Mapped[FeedKind] = mapped_column(str_enum(FeedKind, "kind", length=8))
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Feed:
    """What a feed token opens: its kind, workspace, and the member / group / event it is for."""

    kind: FeedKind
    workspace: Workspace
    member: Member | None = None
    group: Group | None = None
    event_id: uuid.UUID | None = None
    event_title: str | None = None

    @property
    def name(self) -> str:
        if self.event_title is not None:
            return f"{self.workspace.name}: {self.event_title}"
        if self.member is not None:
            return f"{self.workspace.name}: {self.member.name}"
        if self.group is not None:
            return f"{self.workspace.name}: {self.group.name}"
        return self.workspace.name
