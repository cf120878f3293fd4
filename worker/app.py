"""The taskiq side: the broker, the task that carries out a job, and the two long-running loops.

`vestnik scheduler` claims due jobs in Postgres and enqueues one task per job on taskiq-redis's
RedisStreamBroker; `vestnik worker` runs those tasks and acknowledges each only after its outcome is
recorded. Redis holds nothing that Postgres does not: a task lost with Redis, or with a killed
worker, comes back when the job's lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from taskiq import AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from core import kinds
from core.clock import utcnow
from core.collector import settle_collector
from core.db import make_engine, make_sessionmaker
from core.delivery.deliveries import mark_unknown
from core.delivery.dispatch import BATCHES_IN_FLIGHT, dispatch_job, help_with_job, retry_deferred
from core.delivery.jobs import claim_due_jobs
from core.delivery.ratelimit import RateLimiter, redis_pool
from core.insights.daily_report import plan_daily_reports
from core.journeys.runner import WEBHOOK_TIMEOUT, advance_due
from core.journeys.triggers import sweep
from core.notify.planning import extend_horizons
from core.settings import Settings
from worker.wakeup import Wakeup, next_due

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
TASK = "vestnik.dispatch_job"
HELP_TASK = "vestnik.help_with_job"
QUEUE = "vestnik:jobs"
HORIZON_EVERY = timedelta(minutes=1)
REPORTS_EVERY = timedelta(seconds=30)  # a lead's report goes within this of their chosen time
BROKER_CONNECTIONS = 8
MAX_BOUNCES = 60
BOUNCE_PAUSE = 1.0  # seconds: a help request is passed on for about a minute
JOURNEY_POLL = 0.25  # seconds between looks for due journey runs when none were waiting
RUNS_PER_PASS = 200
SWEEP_EVERY = timedelta(seconds=30)  # inactive, schedule and unanswered triggers


def build_broker(redis_url: str) -> RedisStreamBroker:
    # The broker reads and acknowledges a few tasks at a time: a small pool of its own.
    return RedisStreamBroker(
        url=redis_url,
        queue_name=QUEUE,
        consumer_group_name="vestnik-workers",
        max_connection_pool_size=BROKER_CONNECTIONS,
        # One message per read: a worker takes a job only when it can start it, so idle workers
        # get the next ones (and the helpers of a big fan-out land on other workers).
        xread_count=1,
    )


def redis_connections(settings: Settings) -> int:
    """The worker's Redis pool: every job in flight has up to BATCHES_IN_FLIGHT reservations on
    the wire at once, plus the retry loop and the pause checks. The pool waits when full (never
    fails a call), so this is a ceiling on connections, not a hard limit on work."""
    return settings.worker_concurrent_jobs * (BATCHES_IN_FLIGHT + 1) + 8


def owner_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


async def run_worker(
    settings: Settings,
    redis_url: str,
    database_url: str,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """Run job tasks until ``stop`` is set; meanwhile retry deferred deliveries every second."""
    kinds.install()
    settle_collector()
    engine = make_engine(database_url, pool_size=settings.db_pool_size)
    sessions = make_sessionmaker(engine)
    redis = redis_pool(redis_url, settings.redis_max_connections or redis_connections(settings))
    # Imported here: the scheduler shares this module but sends nothing, and aiogram takes
    # seconds to import.
    from worker.channels import build_channels, close_channels

    channels, closables = build_channels(settings)
    limiter = RateLimiter(redis)
    secret = settings.signing_key
    broker: AsyncBroker = build_broker(redis_url)
    broker.is_worker_process = True
    lease = timedelta(seconds=settings.job_lease_seconds)

    sending: set[str] = set()

    async def dispatch(job_id: str) -> None:
        # A job whose lease ran out before this worker reached it (a slow start, a busy machine)
        # is enqueued again; the copy that arrives while this worker is still sending it has
        # nothing to add, and running both would put two batches on the wire at once.
        if job_id in sending:
            log.info("job %s: already being sent by this worker", job_id)
            return
        sending.add(job_id)
        try:
            await _dispatch(job_id)
        finally:
            sending.discard(job_id)

    helpers: AsyncKicker[..., None] = AsyncKicker(HELP_TASK, broker, labels={})

    async def ask_for_help(job_id: uuid.UUID) -> None:
        for _ in range(settings.worker_helpers):
            await helpers.kiq(str(job_id))

    async def _dispatch(job_id: str) -> None:
        report = await dispatch_job(
            sessions,
            uuid.UUID(job_id),
            channels,
            secret,
            utcnow,
            lease,
            limiter=limiter,
            ask_for_help=ask_for_help if settings.worker_helpers else None,
            help_above=settings.worker_help_above,
            stopping=stop,
        )
        if report.outcomes:
            log.info("job %s: %s", job_id, report.outcomes)

    async def help_job(job_id: str, bounces: int = 0) -> None:
        if job_id in sending:
            # Help must come from another worker: this one is already sending the job as fast
            # as it can. Passed on after a pause while this worker still sends the job, so a
            # worker that starts (or frees up) later can still join in; with no other worker
            # about, it stops after MAX_BOUNCES passes.
            if bounces < MAX_BOUNCES:
                await _sleep(stop, BOUNCE_PAUSE)
                if job_id in sending and not stop.is_set():
                    await helpers.kiq(job_id, bounces + 1)
            return
        report = await help_with_job(
            sessions, uuid.UUID(job_id), channels, secret, utcnow, limiter=limiter, stopping=stop
        )
        if report.outcomes:
            log.info("helped with job %s: %s", job_id, report.outcomes)

    broker.register_task(dispatch, task_name=TASK)
    broker.register_task(help_job, task_name=HELP_TASK)

    async def retry_loop() -> None:
        while not stop.is_set():
            try:
                report = await retry_deferred(
                    sessions, channels, secret, utcnow, limiter=limiter, stopping=stop
                )
                if report.outcomes:
                    log.info("retried deliveries: %s", report.outcomes)
            except Exception:  # a bad moment (database restart) must not end the loop
                log.exception("retrying deferred deliveries failed; trying again")
            await _sleep(stop, 1.0)

    owner = owner_name("worker")

    async def journey_loop() -> None:
        # Journeys run from Postgres alone (claimed under a lease), not through Redis: a
        # flushed Redis loses no step.
        next_sweep = utcnow()
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as http:
            while not stop.is_set():
                claimed = 0
                try:
                    if utcnow() >= next_sweep:
                        entered = await sweep(sessions, utcnow())
                        if entered:
                            log.info("journeys: %d member(s) entered on a schedule", entered)
                        next_sweep = utcnow() + SWEEP_EVERY
                    claimed = await advance_due(
                        sessions, owner, utcnow, limit=RUNS_PER_PASS, lease=lease, http=http
                    )
                except Exception:  # a bad moment (database restart) must not end the loop
                    log.exception("carrying journey runs failed; trying again")
                if claimed < RUNS_PER_PASS:
                    await _sleep(stop, JOURNEY_POLL)

    await broker.startup()
    retries = asyncio.create_task(retry_loop())
    journeys = asyncio.create_task(journey_loop())
    ready()  # tasks wait in the Redis stream until the receiver below reads them
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            await _receive(broker, pool, settings, stop)
    finally:
        stop.set()
        await retries
        await journeys
        await broker.shutdown()
        await close_channels(channels, closables)
        await redis.aclose()
        await engine.dispose()


async def _receive(
    broker: AsyncBroker, pool: ThreadPoolExecutor, settings: Settings, stop: asyncio.Event
) -> None:
    """Run job tasks from the stream until ``stop``; through a Redis outage, wait and read again
    (jobs whose messages were lost come back through their lease)."""
    backoff = 0.5
    while not stop.is_set():
        receiver = Receiver(
            broker,
            executor=pool,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            max_async_tasks=settings.worker_concurrent_jobs,
            run_startup=False,
        )
        try:
            await receiver.listen(stop)
            backoff = 0.5
        except Exception as exc:  # RedisError or OSError, possibly inside an exception group
            log.warning("reading jobs from Redis failed (%r); again in %.1f s", exc, backoff)
            await _sleep(stop, backoff)
            backoff = min(backoff * 2, 10.0)
            with contextlib.suppress(Exception):
                await broker.startup()  # the consumer group, if Redis came back empty


async def run_scheduler(
    settings: Settings,
    redis_url: str,
    database_url: str,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """Claim due jobs and enqueue them until ``stop`` is set; extend recurring events' horizons."""
    kinds.install()
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    broker = build_broker(redis_url)
    await broker.startup()
    ready()
    kicker: AsyncKicker[..., None] = AsyncKicker(TASK, broker, labels={})
    owner = owner_name("scheduler")
    lease = timedelta(seconds=settings.job_lease_seconds)
    next_horizon = next_reports = utcnow()
    wakeup = Wakeup(database_url)
    listener = asyncio.create_task(wakeup.listen())
    try:
        while not stop.is_set():
            wait = settings.scheduler_interval_seconds
            try:
                async with sessions() as session:
                    if utcnow() >= next_horizon:
                        await extend_horizons(session, utcnow())
                        await session.commit()
                        next_horizon = utcnow() + HORIZON_EVERY
                    if utcnow() >= next_reports:
                        reports = await plan_daily_reports(session, utcnow(), settings.public_url)
                        await session.commit()
                        if reports:
                            log.info("planned %d lead daily report(s)", reports)
                        next_reports = utcnow() + REPORTS_EVERY
                    jobs = await claim_due_jobs(session, owner, utcnow(), lease=lease)
                    await session.commit()
                    if await mark_unknown(session, utcnow(), lease):
                        await session.commit()
                    due = await next_due(session)
                for job in jobs:
                    await kicker.kiq(str(job.id))
                if jobs:
                    log.info("enqueued %d due job(s)", len(jobs))
                    continue  # more may be due right away
                if due is not None:  # wake when the next one is due, not a poll later
                    wait = min(wait, max(0.0, (due - utcnow()).total_seconds()) + 0.01)
            except Exception:  # keep going through a database or Redis restart
                log.exception("scheduling pass failed; trying again")
            # A job made due soon wakes this at once (NOTIFY); polling is the fallback.
            await wakeup.wait(stop, wait)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await broker.shutdown()
        await engine.dispose()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
