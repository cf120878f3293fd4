"""Claiming due jobs under a lease, so any number of schedulers can run and none double-claims.

A claimed job belongs to its claimer until ``lease_until``; if the claimer dies (or the message
carrying the job is lost with Redis), the lease runs out and the next claim takes the job again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.models import Job, JobStatus

DEFAULT_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    kind: str
    event_id: uuid.UUID | None
    due_at: datetime
    attempts: int


async def claim_due_jobs(
    session: AsyncSession,
    owner: str,
    now: datetime,
    *,
    limit: int = 500,
    lease: timedelta = DEFAULT_LEASE,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` jobs that are due, or whose lease ran out, oldest first.

    One statement: the inner SELECT … FOR UPDATE SKIP LOCKED passes over rows another claimer is
    holding, so two schedulers at once get disjoint sets. The caller commits.
    """
    claimable = (
        select(Job.id)
        .where(
            or_(
                and_(Job.status == JobStatus.pending.value, Job.due_at <= now),
                and_(Job.status == JobStatus.claimed.value, Job.lease_until < now),
            )
        )
        .order_by(Job.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(claimable))
        .values(
            status=JobStatus.claimed.value,
            lease_until=now + lease,
            claimed_by=owner,
            attempts=Job.attempts + 1,
        )
        .returning(Job.id, Job.kind, Job.event_id, Job.due_at, Job.attempts)
        .execution_options(synchronize_session=False)
    )
    return sorted((ClaimedJob(*row) for row in rows), key=lambda j: j.due_at)


async def finish_job(
    session: AsyncSession, job_id: uuid.UUID, now: datetime, error: str | None = None
) -> bool:
    """Mark a claimed job done (or failed, with the reason). False if it was not claimed any more
    (cancelled meanwhile, or finished by another worker after a lease ran out)."""
    status = JobStatus.done if error is None else JobStatus.failed
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.claimed.value)
        .values(status=status.value, done_at=now, lease_until=None, last_error=error)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def postpone_job(
    session: AsyncSession, job_id: uuid.UUID, until: datetime, reason: str
) -> None:
    """Hand a claimed job back to be claimed again at ``until`` (quiet hours, rate limits)."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.claimed.value)
        .values(status=JobStatus.pending.value, due_at=until, lease_until=None, last_error=reason)
        .execution_options(synchronize_session=False)
    )


async def hand_back_job(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """A worker that is stopping gives back a job it has not finished: pending again, due as it
    was, so the next claim takes it at once (the change wakes the schedulers, migration 0014)
    rather than when its lease runs out. False if it was not claimed any more."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.claimed.value)
        .values(status=JobStatus.pending.value, lease_until=None)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def renew_lease(
    session: AsyncSession, job_id: uuid.UUID, now: datetime, lease: timedelta = DEFAULT_LEASE
) -> None:
    """A worker still busy with a long job keeps it, so no scheduler hands it out again."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.claimed.value)
        .values(lease_until=now + lease)
    )
