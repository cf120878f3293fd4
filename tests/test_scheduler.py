"""Claiming due jobs: concurrent schedulers never double-claim, and nothing is lost to a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.delivery.jobs import claim_due_jobs, finish_job
from core.delivery.models import Job, JobStatus
from core.notify.planning import extend_horizons
from tests.conftest import Workspace
from tests.factories import ok

LATER = datetime(2027, 6, 1, tzinfo=UTC)  # every job planned below is due by then


async def _events_with_jobs(ws: Workspace, count: int) -> None:
    for i in range(count):
        await ok(
            ws.client.post(
                "/events",
                json={
                    "title": f"Event {i}",
                    "starts_at": f"2026-12-{1 + i % 28:02}T{8 + i % 10:02}:00:00Z",
                    "reminder_offsets": [1440, 60, 10],
                },
            ),
            201,
        )


async def _all_jobs(engine: AsyncEngine) -> list[Job]:
    async with make_sessionmaker(engine)() as session:
        return list(await session.scalars(select(Job)))


async def test_two_schedulers_at_once_claim_disjoint_sets(acme: Workspace, engine: AsyncEngine):
    await _events_with_jobs(acme, 100)  # 300 jobs
    sessions = make_sessionmaker(engine)
    claimed: dict[str, list] = {"a": [], "b": []}

    async def scheduler(name: str) -> None:
        while True:
            async with sessions() as session:
                batch = await claim_due_jobs(session, name, LATER, limit=25)
                await asyncio.sleep(0.01)  # hold the row locks while the other one claims
                await session.commit()
            if not batch:
                return
            claimed[name] += [job.id for job in batch]

    await asyncio.gather(scheduler("a"), scheduler("b"))
    everything = {job.id for job in await _all_jobs(engine)}
    assert len(everything) == 300
    assert set(claimed["a"]).isdisjoint(claimed["b"])
    assert set(claimed["a"]) | set(claimed["b"]) == everything
    assert claimed["a"] and claimed["b"], "both schedulers did some of the work"


async def test_an_expired_lease_returns_the_job(acme: Workspace, engine: AsyncEngine):
    await _events_with_jobs(acme, 1)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        first = await claim_due_jobs(session, "crashed", LATER, lease=timedelta(minutes=1))
        await session.commit()
    assert len(first) == 3
    async with sessions() as session:
        assert await claim_due_jobs(session, "other", LATER + timedelta(seconds=30)) == []
        again = await claim_due_jobs(session, "other", LATER + timedelta(minutes=2))
        await session.commit()
    assert {j.id for j in again} == {j.id for j in first}
    assert {j.attempts for j in again} == {2}


async def test_a_claim_that_never_commits_leaves_the_jobs_due(acme: Workspace, engine: AsyncEngine):
    await _events_with_jobs(acme, 2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        assert len(await claim_due_jobs(session, "killed mid-claim", LATER)) == 6
        await session.rollback()  # the process died before COMMIT
    async with sessions() as session:
        assert len(await claim_due_jobs(session, "survivor", LATER)) == 6
        await session.commit()


async def test_finished_jobs_are_not_claimed_again_and_cancelled_ones_cannot_finish(
    acme: Workspace, engine: AsyncEngine
):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": "2026-12-10T12:00:00Z",
                "reminder_offsets": [60, 10],
            },
        ),
        201,
    )
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        jobs = await claim_due_jobs(session, "w", LATER)
        await session.commit()
    await ok(acme.client.patch(f"/events/{event['id']}", json={"status": "cancelled"}))
    async with sessions() as session:
        assert await finish_job(session, jobs[0].id, LATER) is False  # cancelled while in flight
        await session.commit()
    statuses = sorted(j.status for j in await _all_jobs(engine))
    assert statuses == [JobStatus.cancelled.value, JobStatus.cancelled.value]


async def test_recurring_events_get_their_next_jobs_as_time_goes_by(
    acme: Workspace, engine: AsyncEngine
):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Daily",
                "starts_at": "2026-12-01T09:00:00Z",
                "rrule": "FREQ=DAILY",
                "reminder_offsets": [10],
            },
        ),
        201,
    )
    before = {j.due_at for j in await _all_jobs(engine)}
    later = utcnow() + timedelta(days=20)
    async with make_sessionmaker(engine)() as session:
        assert await extend_horizons(session, later) == 1
        await session.commit()
        assert await extend_horizons(session, later) == 0  # nothing to do twice
    after = {j.due_at for j in await _all_jobs(engine)}
    assert before < after
    assert max(after) > max(before) + timedelta(days=19)
    assert event["id"]
