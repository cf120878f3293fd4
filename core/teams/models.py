"""Tables of a workspace's people. Every tenant table carries ``workspace_id``."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base, IdMixin, TenantMixin, TimestampMixin, str_enum
from core.teams.builtin_roles import BuiltinRole


class MemberStatus(StrEnum):
    active = "active"
    unsubscribed = "unsubscribed"
    unreachable = "unreachable"


class TimeOfDay(StrEnum):
    morning = "morning"
    day = "day"
    evening = "evening"


class Messenger(StrEnum):
    """A messenger a member may be reached on (an account of theirs there)."""

    telegram = "telegram"
    max = "max"


class CalendarVersioned:
    """Bumped by the database itself (migration 0020's triggers), in the transaction of any change
    to what a calendar feed of it shows: a feed's validator is then one indexed lookup, and no
    change can be missed by a code path that forgot to say so. Never written by vestnik."""

    calendar_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    calendar_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


def _ws_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)


class Workspace(IdMixin, TimestampMixin, CalendarVersioned, Base):
    __tablename__ = "workspaces"
    __table_args__ = (
        CheckConstraint("rate_per_second IS NULL OR rate_per_second > 0", name="rate_positive"),
        CheckConstraint("daily_limit IS NULL OR daily_limit > 0", name="daily_limit_positive"),
    )

    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Minutes before the start, for events created without reminders of their own.
    default_reminder_offsets: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=list, server_default="{}"
    )
    # The workspace's own send limits, below the bot's; NULL = only the bot's limits apply.
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    # Journey messages and broadcasts one member gets per hour and per day, across journeys:
    # more are held (never dropped) until the window has room. NULL = no cap.
    member_hourly_cap: Mapped[int | None] = mapped_column(Integer, default=3, server_default="3")
    member_daily_cap: Mapped[int | None] = mapped_column(Integer, default=10, server_default="10")


class Member(TenantMixin, TimestampMixin, CalendarVersioned, Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email"),
        UniqueConstraint("workspace_id", "external_id"),
        CheckConstraint("(quiet_start IS NULL) = (quiet_end IS NULL)", name="quiet_hours_pair"),
        # Lists and audience previews by name: the first page walks this in order.
        Index(
            "ix_members_workspace_name", "workspace_id", "name", "id", postgresql_include=["status"]
        ),
        # A workspace's members with their status and nothing else: an audience's counts read
        # this index alone (migration 0025), and it stands in for the workspace's own index.
        Index("ix_members_workspace_id", "workspace_id", "id", postgresql_include=["status"]),
    )
    # Indexed above with the id and status (TenantMixin would index the workspace alone).
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    # The id another system (a CRM, a course platform) knows the member by: signals name it.
    external_id: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="en")
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    preferred_time: Mapped[TimeOfDay] = mapped_column(
        str_enum(TimeOfDay, "preferred_time"), default=TimeOfDay.day
    )
    status: Mapped[MemberStatus] = mapped_column(
        str_enum(MemberStatus, "status"), default=MemberStatus.active
    )
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Leads and owners get a daily report in the bot at this local time; None: they do not.
    daily_report_at: Mapped[time | None] = mapped_column(
        Time, default=time(9), server_default="09:00"
    )
    # The messenger their messages go to when they have several; None: the one they joined with.
    preferred_messenger: Mapped[str | None] = mapped_column(String(16))
    # Loaded with the member (one IN query per page of members): every channel asks for them.
    accounts: Mapped[list[MemberAccount]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )

    def __init__(self, **fields: object) -> None:
        # A new member starts with no accounts, known without asking the database (a collection
        # left unset would be loaded lazily after the flush, which async sessions cannot do).
        fields.setdefault("accounts", [])
        super().__init__(**fields)

    def messengers(self) -> list[str]:
        """Their messengers in the order a message tries them: the chosen one first, then the
        one they joined with, then the rest (each falls back to the next if unreachable)."""
        joined = sorted(
            self.accounts, key=lambda a: a.created_at.timestamp() if a.created_at else float("inf")
        )
        names = [str(Messenger(a.messenger).value) for a in joined]
        if self.preferred_messenger in names:
            names.remove(self.preferred_messenger)
            names.insert(0, self.preferred_messenger)
        return names

    def account(self, messenger: Messenger) -> MemberAccount | None:
        return next((a for a in self.accounts if a.messenger == messenger), None)

    def account_id(self, messenger: Messenger) -> str | None:
        """Who the member is on that messenger (its user id), or None without an account."""
        account = self.account(messenger)
        return account.external_id if account is not None else None

    def chat_on(self, messenger: Messenger) -> str | None:
        """The chat a message to the member goes to on that messenger, or None while unknown
        (a Telegram private chat is the user's id; a MAX dialog is named once they write)."""
        account = self.account(messenger)
        if account is None:
            return None
        if account.chat_id is not None or messenger != Messenger.telegram:
            return account.chat_id
        return account.external_id


class MemberAccount(TenantMixin, Base):
    """A member's account on one messenger: the user id the messenger names them by, and the chat
    a bot writes to them in (on Telegram the same number; on MAX a dialog of its own). One per
    member and messenger, and one member per account in a workspace: the account is who signs in
    as that member, so changing it is an owner's act (Action.link_messenger)."""

    __tablename__ = "member_accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "messenger", "external_id"),
        UniqueConstraint("member_id", "messenger"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    messenger: Mapped[Messenger] = mapped_column(
        Enum(
            Messenger,
            name="messenger",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class Role(TenantMixin, Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(64))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class MemberRole(Base):
    __tablename__ = "member_roles"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    workspace_id: Mapped[uuid.UUID] = _ws_fk()


class Group(TenantMixin, TimestampMixin, CalendarVersioned, Base):
    __tablename__ = "groups"
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")


# Names are unique per workspace regardless of case: "Backend" and "backend" are one group.
Index("uq_groups_workspace_lower_name", Group.workspace_id, func.lower(Group.name), unique=True)


class MemberGroup(Base):
    __tablename__ = "member_groups"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    workspace_id: Mapped[uuid.UUID] = _ws_fk()
    added_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class Tag(TenantMixin, TimestampMixin, Base):
    __tablename__ = "tags"
    name: Mapped[str] = mapped_column(String(64))


Index("uq_tags_workspace_lower_name", Tag.workspace_id, func.lower(Tag.name), unique=True)


class MemberTag(Base):
    """A tag a member carries. Permanent: only an explicit, audited removal deletes it."""

    __tablename__ = "member_tags"

    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    workspace_id: Mapped[uuid.UUID] = _ws_fk()
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class TagChange(TenantMixin, Base):
    """Audit trail of every tag added to or removed from a member.

    Keeps the tag's name so the history survives deleting the tag itself.
    """

    __tablename__ = "tag_changes"
    __table_args__ = (CheckConstraint("action IN ('added', 'removed')", name="action"),)

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    tag_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tags.id", ondelete="SET NULL"))
    tag_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class ApiToken(TenantMixin, Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(f"role IN {tuple(r.value for r in BuiltinRole)}", name="role"),
    )

    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InviteKind(StrEnum):
    personal = "personal"  # for one existing member; binds to the first Telegram account using it
    group = "group"  # admits new members into a group, with tags, within a use count and expiry


class Invite(TenantMixin, Base):
    """A deep link (``/start <token>``) into a workspace; only the token's SHA-256 is stored."""

    __tablename__ = "invites"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'personal') = (member_id IS NOT NULL AND group_id IS NULL)", name="target"
        ),
        CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="uses"),
    )

    kind: Mapped[InviteKind] = mapped_column(str_enum(InviteKind, "kind"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    tag_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    # Who used a personal invite: "<messenger>:<their id there>".
    used_by: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CodeWordMatch(StrEnum):
    exact = "exact"  # the message is the phrase, character for character (spaces trimmed)
    normalized = "normalized"  # the same after case, punctuation, ё/е and emoji are set aside
    contains = "contains"  # the normalized message contains the phrase as whole words
    meaning = "meaning"  # says the same thing (core.meaning): "благодарю" for "спасибо"


class CodeWord(TenantMixin, Base):
    """A phrase members may send the bot: it tags the sender and/or answers with a template.
    A negative phrase stops every code word of the workspace from firing on a message."""

    __tablename__ = "code_words"
    __table_args__ = (
        CheckConstraint(f"match IN {tuple(m.value for m in CodeWordMatch)}", name="match"),
        UniqueConstraint("workspace_id", "normalized", "match", "negative"),
    )

    phrase: Mapped[str] = mapped_column(String(200))
    normalized: Mapped[str] = mapped_column(String(200))
    match: Mapped[str] = mapped_column(String(16), default=CodeWordMatch.normalized.value)
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    tag_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    reply: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class ChatLink(TenantMixin, Base):
    """A group chat (Telegram or MAX) linked by a lead to a vestnik group: that group's events
    are announced there, with answer buttons that record for whoever presses them."""

    __tablename__ = "chat_links"
    __table_args__ = (UniqueConstraint("messenger", "chat_id"),)

    messenger: Mapped[str] = mapped_column(
        String(16), default=Messenger.telegram.value, server_default=Messenger.telegram.value
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(255), default="")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    linked_by: Mapped[str] = mapped_column(String(200))
    linked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
