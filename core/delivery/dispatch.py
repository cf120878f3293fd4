"""Carrying out one job: who gets it now, what they read, and one delivery per member and channel.

Flow (DESIGN.md, "Flow of one reminder", steps 3-4): resolve the audience at send time, apply each
member's status and mutes, pick the first channel that reaches them (the member's chosen
messenger first, then their others, then the rest in the deployment's order; a blocked one is
skipped) and claim a delivery row per (job, member, channel) under its
unique constraint. A retry of the same job finds the rows and sends nothing twice.

The rows are streamed, not made all at once: the audience is read a few hundred members at a time,
each part's rows are inserted and handed, per channel, to a pipeline of ``BATCHES_IN_FLIGHT``
senders (one pipeline a channel, so a slow messenger never holds back a fast one), so the first
message of a 20,000-member fan-out leaves while the rest are still being written. Each sender
takes a batch: reserves rate-limit slots for all of it in one Redis round trip, waits until just
before the first slot, commits the batch as ``sending``, sends each message at its slot, and
records every outcome in one statement. A crash between those two commits leaves rows
``sending``; after the job's lease the scheduler marks them ``unknown``
(core.delivery.deliveries.mark_unknown), never sends them again on its own.

This module is orchestration only: every state change of a row is a named transition in
core.delivery.deliveries, and what a job is about (whom it reaches, what they read, until when)
is its subject's business (core.delivery.subjects). Nothing here knows events or broadcasts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import Exists, Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.delivery import deliveries
from core.delivery.allowance import daily_allowance, next_utc_day
from core.delivery.answer_buttons import BUTTON_VERSION, LINK_VERSION, encode_answer
from core.delivery.channels import Channel, Outcome, OutcomeKind
from core.delivery.deliveries import Planned, Recorded
from core.delivery.jobs import DEFAULT_LEASE, finish_job, hand_back_job, renew_lease
from core.delivery.models import Delivery, DeliveryStatus, Job, JobStatus
from core.delivery.quiet_hours import defer_until
from core.delivery.ratelimit import RateLimiter, Reservation
from core.delivery.reachability import blocked_channels, mark_unreachable
from core.delivery.retries import MAX_ATTEMPTS
from core.delivery.subjects import Outlets, Subject, subject_of
from core.teams.models import Member, MemberStatus, Workspace

log = logging.getLogger(__name__)
# The audience is read and its rows written this many members at a time; the first part is small
# so the first message leaves quickly.
FIRST_PART = 200
PART = 2000
# Batches on their way at once per job; a batch is about half a second of the channel's rate.
BATCHES_IN_FLIGHT = 4
QUEUED_AHEAD = 100
MAX_BATCH = 250
BATCH_SECONDS = 0.5
# A crash loses at most the batches on the wire: they are shown as ``unknown``, never resent.
MAX_UNCERTAIN = BATCHES_IN_FLIGHT * MAX_BATCH
RETRY_BATCH = 16
# A message this late for its slot takes a new one rather than arriving in a bunch.
LATE_SECONDS = 0.1
# A batch is committed as ``sending`` this long before its first slot, and its slots are taken
# no sooner than that: the commit (100 ms on a busy 2-core machine) used to run after the first
# slot had come, so the batch's first messages left late and arrived in a bunch with the next
# (21 in one second at a limit of 20 in tests/test_faults.py).
MARK_AHEAD_SECONDS = 0.25
# A job whose audience is bigger than this asks the other workers to help send it.
HELP_ABOVE = 2000
# Redis unreachable or its pool exhausted: rows stay queued and the sender tries again this often.
REDIS_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
PAUSED = "the messenger asked every send to wait (flood control)"


@dataclass
class DispatchReport:
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


DAILY_LIMIT = "daily limit"
LOCAL_TIME = "local time"
# A member in the audience whom no channel has an address for (never opened the bot, no email):
# shown to the lead as unreachable for this message, while the member stays active, so linking
# Telegram later brings the next messages.
NO_CHANNEL = "no channel reaches this member (not joined the bot, no email)"


@dataclass(frozen=True)
class _Send:
    delivery_id: uuid.UUID
    member: Member
    channel: Channel
    job: Job
    subject: Subject
    board: object | None  # read once per job (Subject.board)
    rate: float | None = None  # the workspace's own messages-a-second limit


# Commits the rows of a batch as ``sending`` (those still to be sent) and returns their ids.
Mark = Callable[[AsyncSession, list[uuid.UUID]], Awaitable[set[uuid.UUID]]]


class _Lease:
    """Keeps a long job's lease: renewed as sending starts, then every third of the lease."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        job_id: uuid.UUID | None,
        now: Callable[[], datetime],
        lease: timedelta,
    ) -> None:
        self.sessions, self.job_id, self.now, self.lease = sessions, job_id, now, lease
        self.renewed: datetime | None = None

    async def renew_while(self, running: asyncio.Event) -> None:
        """Renew every third of the lease until ``running`` is cleared: a job waiting for slots
        (a slow rate, helpers taking their share) is still being worked on."""
        while running.is_set():
            await self.keep()
            await asyncio.sleep(self.lease.total_seconds() / 4)

    async def keep(self) -> None:
        if self.job_id is None:
            return
        if self.renewed is not None and self.now() - self.renewed <= self.lease / 3:
            return
        self.renewed = self.now()  # before the await: concurrent senders renew once
        async with self.sessions() as session:
            await renew_lease(session, self.job_id, self.renewed, self.lease)
            await session.commit()


class _Pipeline:
    """Sends batches: slots, ``sending``, the calls at their slots, every outcome recorded."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        now: Callable[[], datetime],
        channels: Sequence[Channel],
        limiter: RateLimiter | None,
        report: DispatchReport,
        lease: _Lease,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.sessions, self.secret, self.now = sessions, secret, now
        self.channels, self.limiter, self.report, self.lease = channels, limiter, report, lease
        # Set when the worker is stopping: batches not yet taken are left queued.
        self.stopping = stopping or asyncio.Event()

    async def run_batch(self, sends: Sequence[_Send], mark: Mark, late: int = 0) -> bool:
        """Send a batch. False if ``mark`` gave none of it to us (the job is not ours any more)."""
        planned: list[tuple[_Send, float, Reservation | None]] = []
        groups: dict[tuple[str, float | None], list[_Send]] = {}
        for s in sends:
            groups.setdefault((s.channel.name, s.rate), []).append(s)
        later: dict[uuid.UUID, float] = {}  # rows whose chat is busy: seconds until it is free
        for (_, rate), group in groups.items():
            await group[0].channel.warm()  # before the slots: a cold first request arrives late
            reservation = await self._reserve(group, rate)
            if reservation is None:
                planned += [(s, time.monotonic(), None) for s in group]
                continue
            for i, s in enumerate(group):
                if reservation.busy[i]:
                    later[s.delivery_id] = reservation.delays[i]
                else:
                    planned.append((s, reservation.slots[i], reservation))
        if not later:
            return await self._send_planned(sends, planned, mark, late)
        # Their chats are busy (their own limit): they take slots once the chats are free, left
        # untouched meanwhile (another worker may be sending them).
        waiting = [s for s in sends if s.delivery_id in later]
        rest = asyncio.create_task(self._after(max(later.values()), waiting, mark, late))
        ready = [s for s in sends if s.delivery_id not in later]
        try:
            sent = await self._send_planned(ready, planned, mark, late) if ready else False
        except BaseException:
            rest.cancel()
            raise
        return await rest or sent

    async def _send_planned(
        self,
        sends: Sequence[_Send],
        planned: list[tuple[_Send, float, Reservation | None]],
        mark: Mark,
        late: int,
    ) -> bool:
        slotted = [at for _, at, r in planned if r is not None]
        mark_at = min(slotted) - MARK_AHEAD_SECONDS if slotted else time.monotonic()
        await asyncio.sleep(max(0.0, mark_at - time.monotonic()))
        if self.stopping.is_set():
            return True  # the worker is stopping: nothing taken, the rows stay queued
        stalled = time.monotonic() - mark_at > LATE_SECONDS
        if stalled and late < 3 and slotted:
            # This process stalled past the batch's slots (a busy machine): sent now, they
            # would arrive bunched with other workers' next ones, over the limit in that second.
            # Nothing is taken yet: the batch takes new slots.
            return await self.run_batch(sends, mark, late + 1)
        async with self.sessions() as session:
            mine = await mark(session, [s.delivery_id for s in sends])
            await session.commit()
        if not mine:
            return False
        mine_planned = [p for p in planned if p[0].delivery_id in mine]
        results = await asyncio.gather(*(self._deliver(s, at, r) for s, at, r in mine_planned))
        await self._record([s for s, _, _ in mine_planned], results)
        return True

    async def _after(self, seconds: float, sends: list[_Send], mark: Mark, late: int) -> bool:
        await asyncio.sleep(seconds)
        return await self.run_batch(sends, mark, late)

    async def _reserve(self, group: list[_Send], rate: float | None) -> Reservation | None:
        channel = group[0].channel
        limits = channel.lane.limits
        unlimited = limits.per_bot_per_second is None and limits.per_chat_per_second is None
        if self.limiter is None or (unlimited and rate is None):
            return None
        chats = [_address(s.channel, s.member) for s in group]
        workspace = (group[0].job.workspace_id, rate) if rate is not None else None
        attempt = 0
        while True:
            try:
                return await self.limiter.reserve(
                    channel.lane, chats, workspace, lead=MARK_AHEAD_SECONDS
                )
            except RedisError as exc:
                # Nothing of the batch is ``sending`` yet: waiting here loses nothing, and the
                # job's lease is kept so no other worker takes it meanwhile.
                wait = REDIS_RETRY_SECONDS[min(attempt, len(REDIS_RETRY_SECONDS) - 1)]
                attempt += 1
                log.warning("rate limits unavailable in Redis (%s); retrying in %s s", exc, wait)
                await self.lease.keep()
                await asyncio.sleep(wait)

    async def _deliver(
        self, s: _Send, at: float, reservation: Reservation | None
    ) -> tuple[Outcome, datetime]:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        lane = s.channel.lane
        if reservation is not None and reservation.spaced and time.monotonic() - at > LATE_SECONDS:
            # Stalled past its slot after the batch was taken: it takes a new slot too. Only
            # where slots are spaced out (a low rate); at high rates a batch leaves at once.
            assert self.limiter is not None
            workspace = (s.job.workspace_id, s.rate) if s.rate is not None else None
            while True:
                chat = [_address(s.channel, s.member)]
                reservation = await self.limiter.reserve(lane, chat, workspace)
                await asyncio.sleep(max(0.0, reservation.slots[0] - time.monotonic()))
                if not reservation.busy[0]:
                    break
        if self.limiter is not None and reservation is not None:
            held = await self.limiter.held(lane)
            if held > 0 or not self.limiter.still_valid(lane, reservation):
                # A 429 since these slots were taken: this one waits and takes a new slot.
                paused = Outcome(OutcomeKind.retry, retry_after=held, reason=PAUSED)
                return paused, self.now()
        try:
            message = s.subject.message(s.member, s.board)
            version = LINK_VERSION if s.channel.answers_by_link else BUTTON_VERSION
            data = [
                encode_answer(self.secret, s.delivery_id, a, version) for _, a in message.buttons
            ]
        except Exception as exc:  # nothing was sent: a wording that cannot be rendered
            log.exception("could not compose delivery %s", s.delivery_id)
            return Outcome(OutcomeKind.failed, reason=f"could not compose: {exc}"[:500]), self.now()
        try:
            outcome = await s.channel.send(_address(s.channel, s.member), message, data)
        except Exception as exc:  # channels never raise for answers; this is a bug or worse
            log.exception("delivery %s: the send broke midway", s.delivery_id)
            reason = f"the send broke midway, it may or may not have arrived: {exc!r}"[:500]
            return Outcome(OutcomeKind.unknown, reason=reason), self.now()
        if outcome.rate_limited and self.limiter is not None:
            await self.limiter.flood(lane, outcome.retry_after or 1.0)
        return outcome, self.now()

    async def _record(
        self, sends: Sequence[_Send], results: Sequence[tuple[Outcome, datetime]]
    ) -> None:
        recorded: list[Recorded] = []
        unreachable: list[tuple[_Send, Outcome, datetime]] = []
        for s, (outcome, at) in zip(sends, results, strict=True):
            self.report.count(outcome.kind.value)
            sent = outcome.kind is OutcomeKind.sent
            next_at, delta, backoff = None, 0, False
            if outcome.kind is OutcomeKind.retry:
                next_at = at + timedelta(seconds=outcome.retry_after or 0)
                # A rate limit (or a pause for one) says when to come back; it does not use up
                # an attempt. Anything else waits longer after each failed attempt.
                rate_limited = outcome.rate_limited or outcome.reason == PAUSED
                delta, backoff = (-1, False) if rate_limited else (0, True)
            elif outcome.kind is OutcomeKind.unreachable:
                unreachable.append((s, outcome, at))
            recorded.append(
                Recorded(
                    s.delivery_id,
                    _STATUS[outcome.kind],
                    provider_message_id=outcome.provider_message_id,
                    sent_at=at if sent else None,
                    reason=None if sent else (outcome.reason or None),
                    next_attempt_at=next_at,
                    attempts_delta=delta,
                    backoff=backoff,
                    at=at,
                )
            )
        async with self.sessions() as session:
            await deliveries.record_outcomes(session, recorded)
            for s, outcome, at in unreachable:
                await mark_unreachable(
                    session, s.member, s.channel.name, outcome.reason, at, self.channels
                )
            await session.commit()


_STATUS = {
    OutcomeKind.sent: DeliveryStatus.sent,
    OutcomeKind.retry: DeliveryStatus.deferred,
    OutcomeKind.unreachable: DeliveryStatus.unreachable,
    OutcomeKind.not_joined: DeliveryStatus.not_joined,
    OutcomeKind.failed: DeliveryStatus.failed,
    OutcomeKind.unknown: DeliveryStatus.unknown,
}


def _batch_size(channel: Channel, rate: float | None) -> int:
    """About half a second of the channel's pace: a pause voids little, a crash loses little."""
    limits = [r for r in (channel.lane.limits.per_bot_per_second, rate) if r is not None]
    if not limits:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(min(limits) * BATCH_SECONDS)))


async def _audience_parts(
    sessions: async_sessionmaker[AsyncSession], query: Select[Member]
) -> AsyncIterator[tuple[list[Member], set[tuple[uuid.UUID, str]]]]:
    """The audience a part at a time (keyset on id, one short transaction each: no connection
    is held while the part is being sent), with the channels each member blocked."""
    query = query.order_by(None).order_by(Member.id)
    last: uuid.UUID | None = None
    size = FIRST_PART
    while True:
        async with sessions() as session:
            page = query if last is None else query.where(Member.id > last)
            members = list(await session.scalars(page.limit(size)))
            blocked = await blocked_channels(session, (m.id for m in members)) if members else set()
        if members:
            yield members, blocked
        if len(members) < size:
            return
        last, size = members[-1].id, PART


async def dispatch_job(
    sessions: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    channels: Sequence[Channel],
    secret: bytes,
    now: Callable[[], datetime],
    lease: timedelta = DEFAULT_LEASE,
    limiter: RateLimiter | None = None,
    ask_for_help: Callable[[uuid.UUID], Awaitable[None]] | None = None,
    help_above: int = HELP_ABOVE,
    stopping: asyncio.Event | None = None,
) -> DispatchReport:
    """Send a claimed job to everyone it concerns now; finish it. Safe to call again for the same
    job (after a crash, a lost message, a second worker): members already served are skipped.
    A long job renews its ``lease`` as it goes, so it is not handed to another worker. Once its
    audience passes ``help_above``, ``ask_for_help`` is called once: other workers then send
    its queued rows too (help_with_job), under the same shared limits. Once ``stopping`` is set
    (the worker is shutting down), the batches on the wire finish, the rest stays queued and the
    job is handed back for the next claim."""
    report = DispatchReport()
    async with sessions() as session:
        job = await session.get(Job, job_id)
        if job is None or job.status != JobStatus.claimed.value:
            return report  # cancelled meanwhile, or finished by someone else
        subject = await subject_of(session, job)
        if subject.gone is not None:
            await finish_job(session, job.id, now(), error=subject.gone)
            await session.commit()
            return report
        workspace = await session.get_one(Workspace, subject.workspace_id)
        allowance = await daily_allowance(session, workspace, now())
        board = await subject.board(session)
        leftovers = list(
            await session.execute(
                select(Delivery.id, Delivery.member_id, Delivery.channel).where(
                    Delivery.job_id == job.id, Delivery.status == DeliveryStatus.queued.value
                )
            )
        )
    keeper = _Lease(sessions, job.id, now, lease)
    if job.lease_until is not None:  # taken when the job was claimed
        keeper.renewed = job.lease_until - lease
    pipeline = _Pipeline(sessions, secret, now, channels, limiter, report, keeper, stopping)
    stopping = pipeline.stopping  # never set if none was given
    by_name = {c.name: c for c in channels}
    rate = workspace.rate_per_second
    mark = _take_queued(_still_claimed(job.id), now)

    # The audience is written well ahead of the sending (up to QUEUED_AHEAD batches a channel),
    # so helpers taking rows from the far end of the job meet this worker only near the end.
    # Each channel has its own queue and senders: a slow lane (MAX at 30/s) never holds back a
    # fast one (Telegram at 1,000/s) in a mixed audience.
    queues: dict[str, asyncio.Queue[list[_Send] | None]] = {}
    senders: list[asyncio.Task[None]] = []
    refused = asyncio.Event()  # the job was cancelled: the event moved, or was deleted
    # A job whose lease ran out while this worker was still on it (a slow machine) is handed to
    # another worker; the rows are shared safely (each is taken by one guarded UPDATE), and once
    # the other one has finished the job there is nothing left here to do.
    finished = asyncio.Event()
    crashed: list[BaseException] = []

    async def not_taken() -> None:
        """None of a batch could be taken: find out why."""
        async with sessions() as session:
            status = await session.scalar(select(Job.status).where(Job.id == job.id))
        if status == JobStatus.cancelled.value:
            refused.set()  # the event changed: the rest must not go
        elif status != JobStatus.claimed.value:
            finished.set()  # another worker took the job over and finished it

    def halted() -> bool:
        return refused.is_set() or finished.is_set() or stopping.is_set() or bool(crashed)

    async def sender(queue: asyncio.Queue[list[_Send] | None]) -> None:
        while (batch := await queue.get()) is not None:
            if halted():
                continue
            try:
                await keeper.keep()
                if not await pipeline.run_batch(batch, mark):
                    await not_taken()
            except Exception as exc:  # the job ends; its rows wait for the next attempt
                crashed.append(exc)

    def lane_queue(name: str) -> asyncio.Queue[list[_Send] | None]:
        if name not in queues:
            queues[name] = asyncio.Queue(maxsize=QUEUED_AHEAD)
            senders.extend(
                asyncio.create_task(sender(queues[name])) for _ in range(BATCHES_IN_FLIGHT)
            )
        return queues[name]

    async def push(sends: list[_Send]) -> None:
        for name in sorted({s.channel.name for s in sends}):
            mine = [s for s in sends if s.channel.name == name]
            size = _batch_size(mine[0].channel, rate)
            for start in range(0, len(mine), size):
                if halted():
                    return  # left queued: the job's next attempt sends them, or they are dropped
                await lane_queue(name).put(mine[start : start + size])

    # Senders never stop early (they skip batches once the job is refused or broken), so every
    # batch put here is taken and the end markers always arrive.
    running = asyncio.Event()
    running.set()
    renewer = asyncio.create_task(keeper.renew_while(running))
    try:
        if leftovers:  # queued by an attempt that died: sent first if they still apply
            await push(await _leftovers(sessions, job, subject, leftovers, by_name, board, rate))
        await keeper.keep()
        seen = 0
        async for members, blocked in _audience_parts(sessions, subject.recipients()):
            if halted():
                break
            await keeper.keep()
            if ask_for_help is not None and seen <= help_above < seen + len(members):
                await ask_for_help(job.id)
            seen += len(members)
            rows, allowance = _plan(subject, members, blocked, channels, allowance, now)
            made = await _insert(sessions, job, rows, now(), report)
            by_id = {m.id: m for m in members}
            sends = [
                _Send(row.id, by_id[row.member_id], by_name[row.channel], job, subject, board, rate)
                for row in made
                if row.status is DeliveryStatus.queued
            ]
            await push(sends)
        for queue in queues.values():
            for _ in range(BATCHES_IN_FLIGHT):
                await queue.put(None)
        await asyncio.gather(*senders)
    except BaseException:
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        raise
    finally:
        running.clear()
        renewer.cancel()
    if crashed:
        raise crashed[0]
    # Rows another attempt of this job made and left queued while this one ran (its lease ran
    # out, it died): sent here before the job is finished, so none stays queued for ever.
    emptied = False  # no row of the job is left queued
    while not halted():
        await keeper.keep()
        async with sessions() as session:
            rest = list(
                await session.execute(
                    select(Delivery.id, Delivery.member_id, Delivery.channel).where(
                        Delivery.job_id == job.id,
                        Delivery.status == DeliveryStatus.queued.value,
                    )
                )
            )
        if not rest:
            emptied = True
            break
        sends = await _leftovers(sessions, job, subject, rest, by_name, board, rate)
        for start in range(0, len(sends), MAX_BATCH):
            if stopping.is_set():
                break
            if not await pipeline.run_batch(sends[start : start + MAX_BATCH], mark):
                await not_taken()  # or the other attempt sent them meanwhile: checked again
    if stopping.is_set() and not (refused.is_set() or finished.is_set() or emptied):
        # Left queued (the batches on the wire went out): the next claim goes on at once.
        async with sessions() as session:
            await hand_back_job(session, job.id)
            await session.commit()
        report.count("handed back")
        return report
    if finished.is_set():
        report.count("finished elsewhere")
        return report
    async with sessions() as session:
        if refused.is_set():
            # The subject changed while this job was going out (an event moved, cancelled or
            # deleted): the rest would carry the old facts. Its new jobs will tell everyone.
            await deliveries.drop_queued(session, job.id, "the event changed")
            await session.commit()
            report.count("dropped")
            return report
        if await subject.finished(session, Outlets(channels, secret, now(), limiter)):
            report.count("announced")
        await finish_job(session, job.id, now())
        await session.commit()
    return report


async def help_with_job(
    sessions: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    channels: Sequence[Channel],
    secret: bytes,
    now: Callable[[], datetime],
    limiter: RateLimiter | None = None,
    idle_seconds: float = 2.0,
    stopping: asyncio.Event | None = None,
) -> DispatchReport:
    """Send queued rows of a big job another worker is dispatching, from the far end of its queue,
    until none are left and the job is no longer being planned. The owner keeps the lease and
    finishes the job; each row is still taken by exactly one worker (deliveries.mark_sending).
    Stops taking rows once ``stopping`` is set."""
    report = DispatchReport()
    async with sessions() as session:
        job = await session.get(Job, job_id)
        if job is None or job.status != JobStatus.claimed.value:
            return report
        subject = await subject_of(session, job)
        workspace = await session.get_one(Workspace, subject.workspace_id)
        board = await subject.board(session)
    lease = _Lease(sessions, None, now, DEFAULT_LEASE)
    pipeline = _Pipeline(sessions, secret, now, channels, limiter, report, lease, stopping)
    by_name = {c.name: c for c in channels}
    still_claimed = _still_claimed(job.id)
    mark = _take_queued(still_claimed, now)

    size = min(_batch_size(c, workspace.rate_per_second) for c in channels)
    idle_since: float | None = None
    while not pipeline.stopping.is_set():
        async with sessions() as session:
            rows = list(
                await session.execute(
                    select(Delivery.id, Delivery.channel, Member)
                    .join(Member, Member.id == Delivery.member_id)
                    .where(
                        Delivery.job_id == job.id,
                        Delivery.status == DeliveryStatus.queued.value,
                        Delivery.channel.in_(list(by_name)),
                    )
                    # The owner sends in the order it wrote (part by part, by member): from
                    # the other end, the two meet only when the job is almost done.
                    .order_by(Delivery.created_at.desc(), Delivery.member_id.desc())
                    .limit(size)
                )
            )
            claimed = await session.scalar(select(still_claimed))
        if not claimed:
            return report
        if not rows:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > idle_seconds:
                return report
            await asyncio.sleep(0.2)
            continue
        idle_since = None
        sends = [
            _Send(d, m, by_name[c], job, subject, board, workspace.rate_per_second)
            for d, c, m in rows
        ]
        await pipeline.run_batch(sends, mark)
    return report


async def _leftovers(
    sessions: async_sessionmaker[AsyncSession],
    job: Job,
    subject: Subject,
    rows: Sequence[tuple[uuid.UUID, uuid.UUID, str]],
    by_name: dict[str, Channel],
    board: object | None,
    rate: float | None,
) -> list[_Send]:
    """Rows an earlier attempt queued and never sent: sent now if the member is still in the
    audience and the channel still exists, else failed as no longer applying."""
    async with sessions() as session:
        still = {
            m.id: m
            for m in await session.scalars(
                subject.recipients().where(Member.id.in_([m for _, m, _ in rows]))
            )
        }
        stale = [d for d, m, c in rows if m not in still or c not in by_name]
        if stale:
            await deliveries.fail_stale(session, stale, "no longer applies")
            await session.commit()
    return [
        _Send(d, still[m], by_name[c], job, subject, board, rate)
        for d, m, c in rows
        if d not in stale
    ]


def _plan(
    subject: Subject,
    members: list[Member],
    blocked: set[tuple[uuid.UUID, str]],
    channels: Sequence[Channel],
    allowance: int | None,
    now: Callable[[], datetime],
) -> tuple[list[Planned], int | None]:
    """Each member's row: the channel that reaches them, and whether it goes now, later (their
    local time, quiet hours, the workspace's daily limit) or cannot go at all."""
    useful_until = subject.useful_until()
    rows = []
    for member in members:
        # Their chosen messenger first, then their others, then the rest (email) in order.
        order = member.messengers()
        ranked = sorted(channels, key=lambda c: order.index(c.name) if c.name in order else 99)
        channel = next(
            (
                c
                for c in ranked
                if c.address(member) is not None and (member.id, c.name) not in blocked
            ),
            None,
        )
        status = DeliveryStatus.unreachable
        why: str | None = NO_CHANNEL
        later: datetime | None = None
        if channel is not None:
            status, why = DeliveryStatus.queued, LOCAL_TIME
            later = subject.local_due(member)
            if later is None or later <= now():
                later = defer_until(member, now(), useful_until)
                why = "quiet hours" if later else None
            if later is None and allowance is not None:
                if allowance <= 0:  # over the workspace's day: the rest waits for tomorrow
                    later, why = next_utc_day(now()), DAILY_LIMIT
                allowance -= 1
            if later is not None:
                status = DeliveryStatus.deferred
        name = (channel or channels[0]).name
        rows.append(Planned(uuid.uuid4(), member.id, name, status, later, why))
    return rows, allowance


async def _insert(
    sessions: async_sessionmaker[AsyncSession],
    job: Job,
    rows: list[Planned],
    at: datetime,
    report: DispatchReport,
) -> list[deliveries.Made]:
    """Write a part's rows; returns those made now (a member served by an earlier attempt of the
    job already has one and is skipped)."""
    async with sessions() as session:
        made = await deliveries.plan(session, job.workspace_id, job.id, rows, at)
        await session.commit()
    for row in made:
        if row.status in (DeliveryStatus.deferred, DeliveryStatus.unreachable):
            report.count(row.status.value)
    return made


def _still_claimed(job_id: uuid.UUID) -> Exists:
    return select(Job.id).where(Job.id == job_id, Job.status == JobStatus.claimed.value).exists()


def _take_queued(still_claimed: Exists, now: Callable[[], datetime]) -> Mark:
    """Take a job's queued rows as ``sending``, while the job is still claimed (not cancelled,
    not finished by another worker)."""

    async def mark(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        queued = Delivery.status == DeliveryStatus.queued.value
        return await deliveries.mark_sending(session, ids, now(), queued, still_claimed)

    return mark


def _address(channel: Channel, member: Member) -> str:
    address = channel.address(member)
    assert address is not None  # rows are only made for members the channel has an address for
    return address


async def retry_deferred(
    sessions: async_sessionmaker[AsyncSession],
    channels: Sequence[Channel],
    secret: bytes,
    now: Callable[[], datetime],
    *,
    limit: int = 200,
    limiter: RateLimiter | None = None,
    stopping: asyncio.Event | None = None,
) -> DispatchReport:
    """Send again the deliveries a channel asked to retry (429, 5xx, a flood-control pause) and
    those held for a local time or quiet hours, once their time has come.

    A few at a time, like a first attempt: slots first, then each row is taken with a guarded
    UPDATE (``deferred`` → ``sending``, so two workers never take the same one) and committed
    before the channel is called; after MAX_ATTEMPTS a delivery fails with the last reason.
    Once ``stopping`` is set, the rest waits for the next pass (of this worker or another).
    """
    report = DispatchReport()
    by_name = {c.name: c for c in channels}
    lease = _Lease(sessions, None, now, DEFAULT_LEASE)
    pipeline = _Pipeline(sessions, secret, now, channels, limiter, report, lease, stopping)
    done = 0

    async def mark(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        due = (Delivery.status == DeliveryStatus.deferred.value, Delivery.next_attempt_at <= now())
        return await deliveries.mark_sending(session, ids, now(), *due)

    while done < limit and not pipeline.stopping.is_set():
        sends: list[_Send] = []
        async with sessions() as session:
            due = list(
                await session.execute(
                    select(Delivery.id, Delivery.job_id, Delivery.member_id, Delivery.channel)
                    .add_columns(Delivery.attempts)
                    .where(
                        Delivery.status == DeliveryStatus.deferred.value,
                        Delivery.next_attempt_at <= now(),
                        Delivery.channel.in_(list(by_name)),
                    )
                    .order_by(Delivery.next_attempt_at)
                    .limit(min(RETRY_BATCH, limit - done))
                )
            )
            if not due:
                break
            done += len(due)
            for delivery_id, job_id, member_id, channel_name, attempts in due:
                job = await session.get_one(Job, job_id)
                subject = await subject_of(session, job)
                member = await session.get_one(Member, member_id)
                channel = by_name[channel_name]
                reason = await _why_not_retry(
                    session, job, subject, member, channel, attempts + 1, now()
                )
                if reason is None:
                    board = await subject.board(session)
                    workspace = await session.get_one(Workspace, job.workspace_id)
                    rate = workspace.rate_per_second
                    sends.append(_Send(delivery_id, member, channel, job, subject, board, rate))
                    continue
                failed = await deliveries.fail_stale(
                    session, [delivery_id], reason, was=DeliveryStatus.deferred
                )
                if failed:
                    report.count(OutcomeKind.failed.value)
            await session.commit()
        if sends:
            await pipeline.run_batch(sends, mark)
    return report


async def _why_not_retry(
    session: AsyncSession,
    job: Job,
    subject: Subject,
    member: Member,
    channel: Channel,
    attempts: int,
    at: datetime,
) -> str | None:
    if attempts > MAX_ATTEMPTS:
        return f"gave up after {MAX_ATTEMPTS} attempts"
    if at >= subject.useful_until():
        return "too late: the moment it was for has passed"
    if (
        channel.address(member) is None
        or subject.gone is not None
        or member.status == MemberStatus.unreachable.value
        or (member.id, channel.name) in await blocked_channels(session, [member.id])
    ):
        return "no longer applies"
    return None
