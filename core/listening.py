"""Hearing Postgres notifications (LISTEN/NOTIFY) on a connection of one's own, kept up for as
long as the listener runs: a lost connection is re-made, and the listener is told it was deaf
meanwhile, since a notification sent while nobody listened is gone for good."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from core.db import async_url

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0


def _plain_dsn(database_url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver name)."""
    url = make_url(async_url(database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def listen(
    database_url: str,
    channel: str,
    *,
    heard: Callable[[str], None],
    listening: Callable[[], None],
    deaf: Callable[[], None],
    retry_seconds: float = RETRY_SECONDS,
) -> None:
    """Until cancelled: ``heard(payload)`` for each notification on ``channel``; ``listening()``
    once a connection listens (after a start or a reconnect: anything sent meanwhile was
    missed), ``deaf()`` whenever it stops."""
    dsn = _plain_dsn(database_url)
    while True:
        try:
            await _listen_once(dsn, channel, heard, listening)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("cannot listen on %s (%s); retrying in %g s", channel, exc, retry_seconds)
        finally:
            deaf()
        await asyncio.sleep(retry_seconds)


async def _listen_once(
    dsn: str, channel: str, heard: Callable[[str], None], listening: Callable[[], None]
) -> None:
    """Listen on one connection until it closes."""
    connection = await asyncpg.connect(dsn)
    try:
        closed = asyncio.Event()
        connection.add_termination_listener(lambda *_: closed.set())
        await connection.add_listener(channel, lambda *note: heard(str(note[-1])))
        listening()
        await closed.wait()
    finally:
        if not connection.is_closed():
            with contextlib.suppress(Exception):
                await connection.close()
