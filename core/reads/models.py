"""The tables migration 0026 keeps: a version per workspace, and the notes that bump it."""

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


class ReadVersionBump(Base):
    """A transaction's note that it changed a workspace's data, gone when it commits."""

    __tablename__ = "read_version_bumps"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    xid: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, server_default=text("pg_current_xact_id()::text::bigint")
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
