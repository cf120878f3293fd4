"""The audit trail: who created, changed, cancelled or sent what, and when.

Core services call ``record`` in the same transaction as the change, so an entry exists exactly when
the change does. Entries name their subject in words (``summary``) as well as by id, so the trail
still reads after the subject is deleted. A member's own acts (unsubscribing) and the messenger's
(a blocked bot) are recorded too, with the member as ``member_id``: they feed the member's
timeline and the workspace's daily figures.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import DateTime, ForeignKey, Index, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, TenantMixin
from core.teams.permissions import Action, Actor

# Actions that are not a lead's: they describe what happened to a member.
MEMBER_UNSUBSCRIBED = "member.unsubscribed"
MEMBER_RESUBSCRIBED = "member.resubscribed"
MEMBER_BLOCKED = "member.blocked_channel"
MEMBER_RETURNED = "member.returned"
MEMBERS_OWN = (MEMBER_UNSUBSCRIBED, MEMBER_RESUBSCRIBED, MEMBER_BLOCKED, MEMBER_RETURNED)


class AuditEntry(TenantMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_workspace_at", "workspace_id", "at"),)

    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    summary: Mapped[str] = mapped_column(Text)


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: uuid.UUID | None
    member_id: uuid.UUID | None
    summary: str


def record(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    actor: str,
    action: str,
    subject: object,
    summary: str,
    member_id: uuid.UUID | None = None,
) -> None:
    """Add one entry. ``subject`` is the changed row (its table and id are taken from it)."""
    session.add(
        AuditEntry(
            workspace_id=workspace_id,
            at=utcnow(),
            actor=actor[:200],
            action=action,
            subject_type=str(getattr(subject, "__tablename__", type(subject).__name__)),
            subject_id=getattr(subject, "id", None),
            member_id=member_id,
            summary=summary,
        )
    )


def record_by(
    session: AsyncSession,
    actor: Actor,
    action: str,
    subject: object,
    summary: str,
    member_id: uuid.UUID | None = None,
) -> None:
    record(session, actor.workspace_id, actor.label, action, subject, summary, member_id)


async def audit_log(
    session: AsyncSession,
    actor: Actor,
    *,
    limit: int = 100,
    before: datetime | None = None,
    leads_only: bool = True,
) -> list[AuditOut]:
    """Newest first. ``leads_only`` leaves out what members and messengers did themselves."""
    actor.require(Action.manage_events)
    query = (
        select(AuditEntry)
        .where(AuditEntry.workspace_id == actor.workspace_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id)
        .limit(limit)
    )
    if before is not None:
        query = query.where(AuditEntry.at < before)
    if leads_only:
        query = query.where(AuditEntry.action.not_in(MEMBERS_OWN))
    return [AuditOut.model_validate(e, from_attributes=True) for e in await session.scalars(query)]


def short(text: str, length: int = 60) -> str:
    """A message or title cut to fit in one line of the trail."""
    line = " ".join(text.split())
    return line if len(line) <= length else line[: length - 1] + "…"
