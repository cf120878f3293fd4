"""The API's answers to its busiest reads (member lists, event lists, audience previews), kept in
each process by the stamp of the workspace's data they were read at (``read_versions``: a random
value per workspace and kind of read that the database renews as any change to what that kind
shows commits, migration 0026).

A read asks Postgres for the stamp (one indexed lookup) and answers from the cache only when an
answer read at that very stamp is kept, so a change committed before the request began is always
seen, whichever process or tool made it, and nothing is ever taken from another workspace's key.
An answer is kept only if the stamp was the same before and after reading it: every statement of
the read then saw exactly that stamp's data (a later statement never sees less than an earlier
one). A transaction that has written anything itself neither keeps nor uses an answer, since
what it sees is not yet any stamp's.

Requests that find the same question unanswered at the same stamp wait for the first one's read
rather than each reading it: when a busy workspace's stamp moves, every request in flight would
otherwise read the same answer at once, and under load the longer reads let more requests pile
onto the next change until the API falls behind (400 reads a second with ten changes a second
did, before this). They take that read's answer even if the stamp moved while it ran (it is then
not kept): each of its statements saw at least the data of the stamp they found current when
they began, which is all a request may ask, and the answer is as whole as a read of their own
would have been. Sending them to read for themselves instead made the API melt down under ten
changes a second once reads grew slower than the changes came (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Awaitable, Callable, Hashable
from enum import StrEnum
from typing import Any

from cachetools import LRUCache
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util import greenlet_spawn

from core.db import plain_connection


class Kind(StrEnum):
    """What a cached read shows, each with a stamp of its own (migration 0026's ``KINDS`` says
    which tables move which): the bot marking members active moves the member lists' stamp,
    not the audience previews' or the event lists'."""

    members = "members"  # every person's fields, roles, groups, tags and accounts
    audience = "audience"  # who belongs to what, their names and status
    events = "events"


DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# A bigger answer is read afresh each time: one such answer would push out hundreds of others.
MAX_ANSWER_BYTES = 1024 * 1024

_STAMP = text(
    "SELECT (SELECT stamp FROM read_versions WHERE workspace_id = :workspace_id AND kind = :kind),"
    " pg_current_xact_id_if_assigned() IS NOT NULL"
)

_ONLY_STAMP = text(
    "SELECT stamp FROM read_versions WHERE workspace_id = :workspace_id AND kind = :kind"
)
_STAMP_BY_DRIVER = "SELECT stamp FROM read_versions WHERE workspace_id = $1 AND kind = $2"

_Key = tuple[uuid.UUID, Hashable]


class ReadCache:
    """Answers by (workspace, what was asked), each with the stamp it was read at; the least
    recently used go first once ``max_bytes`` are held. ``max_bytes`` 0 keeps nothing."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        # Each answer with its stamp and the bytes it holds: its body and what was asked (a
        # preview naming a thousand ids is asked in more bytes than it is answered in).
        self._answers: LRUCache[_Key, tuple[uuid.UUID, bytes, int]] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda kept: kept[2]
        )
        # Reads under way: what they will answer, or None if they failed.
        self._reading: dict[tuple[_Key, uuid.UUID], asyncio.Future[bytes | None]] = {}

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def held(self) -> int:
        """The bytes the answers kept hold."""
        return int(self._answers.currsize)

    def get(self, workspace_id: uuid.UUID, asked: Hashable, stamp: uuid.UUID) -> bytes | None:
        kept = self._answers.get((workspace_id, asked))
        if kept is None or kept[0] != stamp:
            self.misses += 1
            return None
        self.hits += 1
        return kept[1]

    def put(self, workspace_id: uuid.UUID, asked: Hashable, stamp: uuid.UUID, body: bytes) -> None:
        size = len(body) + len(repr(asked))
        if size > min(MAX_ANSWER_BYTES, self.max_bytes):
            return
        self._answers[(workspace_id, asked)] = (stamp, body, size)

    def under_way(
        self, workspace_id: uuid.UUID, asked: Hashable, stamp: uuid.UUID
    ) -> asyncio.Future[bytes | None] | None:
        """The read of this question at this stamp that another request has begun, if any."""
        return self._reading.get(((workspace_id, asked), stamp))

    def begin(self, workspace_id: uuid.UUID, asked: Hashable, stamp: uuid.UUID) -> None:
        future = asyncio.get_running_loop().create_future()
        self._reading[((workspace_id, asked), stamp)] = future

    def end(
        self, workspace_id: uuid.UUID, asked: Hashable, stamp: uuid.UUID, read: bytes | None
    ) -> None:
        """The read begun is over: those waiting get its answer, or None if it failed (read it
        yourselves)."""
        self._reading.pop(((workspace_id, asked), stamp)).set_result(read)


async def current_stamp(
    session: AsyncSession, workspace_id: uuid.UUID, kind: Kind
) -> uuid.UUID | None:
    """The workspace's stamp of ``kind``; None when this transaction has written (or there is
    no stamp)."""
    engine = session.bind  # vestnik's sessions are bound to the engine, never a connection
    if not session.in_transaction() and isinstance(engine, AsyncEngine):
        # Nothing read or written yet, as in a request answered from the cache: asked outside
        # any transaction, one round trip instead of three (BEGIN, the lookup, COMMIT). What it
        # sees is what the session's first statement would have seen, the latest committed.
        return await _stamp_apart(engine, workspace_id, kind)
    connection = await plain_connection(session)
    values = {"workspace_id": workspace_id, "kind": kind.value}
    stamp, writing = (await connection.execute(_STAMP, values)).one()
    return None if writing else stamp


async def _stamp_apart(
    engine: AsyncEngine, workspace_id: uuid.UUID, kind: Kind
) -> uuid.UUID | None:
    """The stamp, asked on a connection of the engine's pool straight through its driver, outside
    any transaction (asyncpg runs a statement outside a transaction by itself). A cached read is
    mostly this lookup: through SQLAlchemy's connection, statement and result it took 2.4 times
    the CPU (465 against 190 µs, docs/performance.md). The pool's own rules still hold (its size,
    its wait, the ping of a connection idle for long). Should the driver fail, the connection is
    dropped and the lookup asked once more through SQLAlchemy, which raises what any statement
    would (a lost database is then a 503, as everywhere)."""
    pooled = await engine.raw_connection()
    driver: Any = pooled.driver_connection  # an asyncpg connection (core.db.make_engine)
    try:
        stamp: uuid.UUID | None = await driver.fetchval(_STAMP_BY_DRIVER, workspace_id, kind.value)
    except Exception:
        await greenlet_spawn(pooled.invalidate)
        async with _autocommit(engine).connect() as apart:
            values = {"workspace_id": workspace_id, "kind": kind.value}
            stamp = (await apart.execute(_ONLY_STAMP, values)).scalar()
            return stamp
    except BaseException:
        await greenlet_spawn(pooled.invalidate)  # cancelled mid-statement: not fit to reuse
        raise
    await greenlet_spawn(pooled.close)
    return stamp


# By the engine itself (the autocommit engine holds the engine's own sync engine, not it): an
# engine dropped takes its entry with it.
_AUTOCOMMIT: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine's pool, its connections handed out in autocommit (made once per engine: made
    for each lookup, or set on each connection, it cost 40 % more than the lookup itself)."""
    apart = _AUTOCOMMIT.get(engine)
    if apart is None:
        apart = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return apart


async def kept_answer(
    engine: AsyncEngine, cache: ReadCache, workspace_id: uuid.UUID, kind: Kind, asked: Hashable
) -> bytes | None:
    """The answer kept for ``asked`` at the current stamp of its kind, if there is one, found
    without a session: for a request already known to ask exactly that (``api.kept_answers``).
    The caller has checked that the actor may read it."""
    if cache.max_bytes <= 0:
        return None
    stamp = await _stamp_apart(engine, workspace_id, kind)
    return None if stamp is None else cache.get(workspace_id, (kind, asked), stamp)


async def answer(
    session: AsyncSession,
    cache: ReadCache,
    workspace_id: uuid.UUID,
    kind: Kind,
    asked: Hashable,
    read: Callable[[], Awaitable[bytes]],
) -> bytes:
    """The answer to ``asked`` (a read of ``kind``) in this workspace: kept, if one read at the
    current stamp of its kind is; otherwise ``read()``, kept if nothing changed while it ran. The
    caller has checked that the actor may read it: the cache knows workspaces, not roles."""
    if cache.max_bytes <= 0:
        return await read()
    asked = (kind, asked)
    stamp = await current_stamp(session, workspace_id, kind)
    if stamp is None:
        return await read()
    kept = cache.get(workspace_id, asked, stamp)
    if kept is not None:
        return kept
    other = cache.under_way(workspace_id, asked, stamp)
    if other is not None:
        # shield: this request cancelled must not cancel the read others wait for.
        shared = await asyncio.shield(other)
        if shared is not None:
            return shared
        return await read()  # that read failed: this one reads (or fails) for itself
    cache.begin(workspace_id, asked, stamp)
    fresh: bytes | None = None
    try:
        fresh = await read()
        if await current_stamp(session, workspace_id, kind) == stamp:
            cache.put(workspace_id, asked, stamp, fresh)
        return fresh
    finally:
        cache.end(workspace_id, asked, stamp, fresh)
