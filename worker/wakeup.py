"""Waking the scheduler: Postgres LISTEN/NOTIFY when a job becomes due soon (migration 0014),
the next due instant otherwise, and the poll interval as the fallback for anything else (a lease
running out on a job claimed by a worker that died, a notification lost with its connection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import async_url
from core.delivery.models import Job, JobStatus

log = logging.getLogger(__name__)
CHANNEL = "vestnik_jobs_due"


class Wakeup:
    """Set when a notification arrives; the listening connection is re-made if it drops."""

    def __init__(self, database_url: str) -> None:
        url = make_url(async_url(database_url)).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.event = asyncio.Event()
        self._connection: asyncpg.Connection | None = None

    async def listen(self) -> None:
        """Keep a listening connection until cancelled; without one the scheduler just polls."""
        while True:
            try:
                self._connection = await asyncpg.connect(self.dsn)
                await self._connection.add_listener(CHANNEL, self._heard)
                closed = asyncio.Event()
                self._connection.add_termination_listener(_setter(closed))
                self.event.set()  # anything notified while we were away: look now
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot listen for due jobs (%s); polling meanwhile", exc)
            finally:
                if self._connection is not None and not self._connection.is_closed():
                    with contextlib.suppress(Exception):
                        await self._connection.close()
                self._connection = None
            await asyncio.sleep(5)

    def _heard(self, *_: object) -> None:
        self.event.set()

    async def wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Until notified, stopped, or ``seconds`` pass."""
        if seconds > 0 and not self.event.is_set():
            waits = {asyncio.ensure_future(self.event.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(waits, timeout=seconds, return_when="FIRST_COMPLETED")
            for task in pending:
                task.cancel()
        self.event.clear()


async def next_due(session: AsyncSession) -> datetime | None:
    """The next instant a job becomes claimable: a pending job's due time, or a claimed job's
    lease running out."""
    pending = select(func.min(Job.due_at)).where(Job.status == JobStatus.pending.value)
    leased = select(func.min(Job.lease_until)).where(Job.status == JobStatus.claimed.value)
    return await session.scalar(
        select(func.least(pending.scalar_subquery(), leased.scalar_subquery()))
    )


def _setter(event: asyncio.Event) -> Callable[..., None]:
    def fire(*_: object) -> None:
        event.set()

    return fire
