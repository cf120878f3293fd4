"""Waking the scheduler: Postgres LISTEN/NOTIFY when a job becomes due soon (migration 0014),
the next due instant otherwise, and the poll interval as the fallback for anything else (a lease
running out on a job claimed by a worker that died, a notification lost with its connection)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.models import Job, JobStatus
from core.listening import listen

CHANNEL = "vestnik_jobs_due"


class Wakeup:
    """Set when a notification arrives, and whenever listening starts again (what was notified
    while the connection was down is lost: look now)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.event = asyncio.Event()

    async def listen(self) -> None:
        """Keep a listening connection until cancelled; without one the scheduler just polls."""
        await listen(
            self.database_url,
            CHANNEL,
            heard=lambda _: self.event.set(),
            listening=self.event.set,
            deaf=lambda: None,
        )

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
