"""Database plumbing: the declarative base, engine and session factory."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Enum,
    ForeignKey,
    MetaData,
    Uuid,
    any_,
    bindparam,
    event,
    func,
    literal,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.clock import utcnow

# Stable constraint names so Alembic migrations and the models always agree.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TenantMixin(IdMixin):
    """A row that belongs to exactly one workspace."""

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, onupdate=utcnow
    )


def str_enum(kind: type[StrEnum], name: str, length: int = 16) -> Enum:
    """A column of one of our StrEnums: stored as its value in a VARCHAR with a CHECK listing
    every value (named ``ck_<table>_<name>``, as the migrations made them), read back as the
    enum member. Not a native Postgres ENUM: adding a value is then a CHECK change, not a type
    change that cannot run inside a transaction."""
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def async_url(url: str) -> str:
    """Accept the usual postgres:// spellings and point them at the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url}")


# A pooled connection used this recently is taken to be alive; one idle for longer is pinged
# before it is handed out. SQLAlchemy's pool_pre_ping pings on every checkout, and asyncpg's ping
# is three round trips (BEGIN, an empty query, ROLLBACK): under load that was a third of a
# read request's round trips, spent on connections that had answered milliseconds before.
TRUSTED_IDLE_SECONDS = 2.0
# Postgres hashes a set of ids (the members an audience includes, those it excludes) only when it
# expects the set to fit its hash memory, work_mem times this (by default 4 MB x 2: about 150,000
# ids). Past that it keeps the set unhashed and scans it again for every member: hours for a broad
# audience of 100,000 members, a preview or a reminder that never finishes. 32 gives about 2.5
# million ids room at the default work_mem; a hash table takes only what its rows need.
HASH_MEM_MULTIPLIER = 32
_IDLE_SINCE = "vestnik_idle_since"


# The SQLSTATE of a statement Postgres cancelled, here for running past statement_timeout.
STATEMENT_CANCELLED = "57014"


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    trusted_idle_seconds: float = TRUSTED_IDLE_SECONDS,
    statement_timeout: float = 0.0,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """``statement_timeout`` (seconds, 0: none) bounds every statement on these connections:
    Postgres cancels one that runs longer (a plan gone bad, a lock held elsewhere) instead of
    letting it hold a request, and a connection, without end. ``pool_timeout``: how long a
    checkout waits for a free connection (then ``sqlalchemy.exc.TimeoutError``)."""
    settings = {"hash_mem_multiplier": str(HASH_MEM_MULTIPLIER)}
    if statement_timeout > 0:
        settings["statement_timeout"] = str(max(1, round(statement_timeout * 1000)))
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        pool_timeout=pool_timeout,
        connect_args={"server_settings": settings},
    )
    pool_events = engine.sync_engine.pool

    @event.listens_for(pool_events, "checkin")
    def _idle_from_now(_: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def _ping_if_idle(connection: Any, record: Any, _: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < trusted_idle_seconds:
            return
        try:
            connection.ping()
        except Exception as error:
            # The pool drops this connection and hands out another (or a new one).
            raise DisconnectionError(f"pooled connection failed its ping: {error}") from error

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def plain_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for statements of plain columns: it spares the ORM's handling
    of each statement and row (a fifth of the CPU of a page of 50 members: 0.84 -> 0.66 ms).
    Flushed first, as the session itself would before a statement: a unit of work that wrote
    and then reads sees what it wrote."""
    await session.flush()
    return await session.connection()


def one_of(column: Any, ids: Collection[uuid.UUID]) -> ColumnElement[bool]:
    """``column = ANY(:ids)`` with the ids as one array parameter: a list of 10,000 ids as
    separate parameters (times the columns of a multi-row INSERT) runs past the 32,767
    parameters the Postgres protocol carries."""
    return cast(ColumnElement[bool], column == any_(literal(list(ids), ARRAY(Uuid()))))


def ids_param(name: str) -> BindParameter[Any]:
    """A list of ids bound as one ``uuid[]`` parameter named ``name`` at each execution: for a
    statement built once (``one_of`` puts the ids in the statement)."""
    return bindparam(name, type_=ARRAY(Uuid()))
