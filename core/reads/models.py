"""The tables migrations 0026 and 0027 keep: stamps per workspace and kind of read, and per part
of its audience, and the notes that renew them."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class ReadVersion(Base):
    """A random stamp per workspace and kind of read (members, audience, events) that the
    database renews as a transaction that changed what that read shows commits (migration
    0026's triggers); never written by vestnik."""

    __tablename__ = "read_versions"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    stamp: Mapped[uuid.UUID]


class _TransactionNote:
    """A note a transaction leaves for its commit (by its id, in a workspace), gone when it
    commits. Unlogged: a crash loses only notes of transactions that did not commit."""

    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    # First, as the migrations made them (a mixin's columns otherwise follow the table's own).
    xid: Mapped[int] = mapped_column(
        BigInteger,
        primary_key=True,
        server_default=text("pg_current_xact_id()::text::bigint"),
        sort_order=-2,
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, sort_order=-1)


class ReadVersionBump(_TransactionNote, Base):
    """A transaction's note that it changed a workspace's data, gone when it commits."""

    __tablename__ = "read_version_bumps"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)


class AudiencePart(Base):
    """A random stamp per group, tag and role of a workspace, for who is in it. Renewed by
    migration 0027's triggers as the audience stamp is; never written by vestnik. A part without
    a row has not changed since that migration."""

    __tablename__ = "audience_parts"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stamp: Mapped[uuid.UUID]


class AudiencePartBump(_TransactionNote, Base):
    """A transaction's note that it changed a part, gone when it commits."""

    __tablename__ = "audience_part_bumps"
    owner: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class AudienceRoster(Base):
    """How many changes to a workspace's members (one joined or left, a name or status moved)
    have been numbered (migration 0027); never written by vestnik."""

    __tablename__ = "audience_rosters"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class AudienceRosterChange(Base):
    """The member a numbered change was to; the last ``ROSTER_KEPT`` (0027) of a workspace's."""

    __tablename__ = "audience_roster_changes"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[uuid.UUID]


class AudienceRosterBump(_TransactionNote, Base):
    """A transaction's note that it changed a member, gone when it commits."""

    __tablename__ = "audience_roster_bumps"
    member_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
