"""Carrying out one job: who gets it now, what they read, and one delivery per member and channel.

Flow (DESIGN.md, "Flow of one reminder", step 3-4): resolve the audience at send time, apply each
member's status and mutes, pick the first channel that reaches them (channels come in order of
preference; a blocked one is skipped), claim a delivery row per (job, member, channel) under its
unique constraint and commit, only then call the channel, then record the outcome. A retry of the same job finds the rows
and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events.models import Answer, Confirmation
from core.events.schemas import ConfirmationBoard
from core.notify.audience import audience_query
from core.notify.callbacks import BUTTON_VERSION, LINK_VERSION, encode_answer
from core.notify.channels import Channel, Outcome, OutcomeKind
from core.notify.chat_posts import announce
from core.notify.models import Delivery, DeliveryStatus, EventMute, Job, JobKind, JobStatus
from core.notify.preferences import defer_until
from core.notify.reachability import blocked_channels, mark_unreachable
from core.notify.scheduler import DEFAULT_LEASE, finish_job, renew_lease
from core.notify.subjects import Subject, subject_of
from core.teams.models import Member, MemberStatus, Workspace
from core.teams.roles import lead_ids
from core.timezones import utc_midnight

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
SEND_CONCURRENCY = 16
INSERT_BATCH = 2000


@dataclass
class DispatchReport:
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


async def _recipients(session: AsyncSession, job: Job, subject: Subject) -> list[Member]:
    active = Member.status == MemberStatus.active.value
    if subject.event is None:  # a broadcast: its audience as it is now
        query = audience_query(subject.workspace_id, subject.audience).where(active)
        return list(await session.scalars(query))
    event = subject.event
    muted = select(EventMute.member_id).where(EventMute.event_id == event.id)
    if job.kind == JobKind.deadline_summary.value:
        # The people who run the workspace hear who is coming.
        leads = lead_ids(event.workspace_id)
        return list(
            await session.scalars(
                select(Member)
                .where(Member.id.in_(leads), active, Member.id.not_in(muted))
                .order_by(Member.name)
            )
        )
    answers = select(Confirmation.member_id).where(
        Confirmation.event_id == event.id, Confirmation.occurrence == job.occurrence
    )
    wanted: ColumnElement[bool] = active
    if job.kind == JobKind.reminder.value:
        # Unsubscribed members get only what they asked for: reminders of what they said yes to.
        going = answers.where(Confirmation.answer == Answer.going.value)
        wanted = or_(
            active,
            and_(Member.status == MemberStatus.unsubscribed.value, Member.id.in_(going)),
        )
    query = audience_query(event.workspace_id, subject.audience).where(
        wanted, Member.id.not_in(muted)
    )
    if job.kind == JobKind.nudge.value:
        query = query.where(Member.id.not_in(answers))
    return list(await session.scalars(query))


# Waits for a slot under a workspace's own per-second limit (workspace id, messages a second).
Pace = Callable[[uuid.UUID, float], Awaitable[None]]
DAILY_LIMIT = "daily limit"
LOCAL_TIME = "local time"
# A member in the audience whom no channel has an address for (never opened the bot, no email):
# shown to the lead as unreachable for this message, while the member stays active, so linking
# Telegram later brings the next messages.
NO_CHANNEL = "no channel reaches this member (not joined the bot, no email)"


async def _send(s: _Send, secret: bytes, pace: Pace | None) -> Outcome:
    if pace is not None and s.rate is not None:
        await pace(s.job.workspace_id, s.rate)
    message = s.subject.message(s.job, s.member, s.board)
    version = LINK_VERSION if s.channel.answers_by_link else BUTTON_VERSION
    data = [encode_answer(secret, s.delivery_id, a, version) for _, a in message.buttons]
    return await s.channel.send(_address(s.channel, s.member), message, data)


async def dispatch_job(
    sessions: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    channels: Sequence[Channel],
    secret: bytes,
    now: Callable[[], datetime],
    lease: timedelta = DEFAULT_LEASE,
    pace: Pace | None = None,
) -> DispatchReport:
    """Send a claimed job to everyone it concerns now; finish it. Safe to call again for the same
    job (after a crash, a lost message, a second worker): members already served are skipped.
    A long job renews its ``lease`` as it goes, so it is not handed to another worker."""
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
        members = await _recipients(session, job, subject)
        blocked = await blocked_channels(session, (m.id for m in members))
        workspace = await session.get_one(Workspace, subject.workspace_id)
        allowance = await daily_allowance(session, workspace, now())
        useful_until = subject.useful_until(job)
        rows = []
        for member in members:
            channel = next(
                (
                    c
                    for c in channels
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
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": subject.workspace_id,
                    "job_id": job.id,
                    "member_id": member.id,
                    "channel": (channel or channels[0]).name,
                    "status": status.value,
                    "next_attempt_at": later,
                    "last_error": why,
                    "attempts": 0,
                }
            )
        # Postgres takes at most 32767 bind parameters per statement.
        for start in range(0, len(rows), INSERT_BATCH):
            result = await session.execute(
                insert(Delivery)
                .values(rows[start : start + INSERT_BATCH])
                .on_conflict_do_nothing()
                .returning(Delivery.status)
            )
            for written in result.scalars():
                if written in (DeliveryStatus.deferred.value, DeliveryStatus.unreachable.value):
                    report.count(written)
        await session.commit()
        # Every queued row of the job: the ones just made, and any a crashed worker left unsent.
        queued = list(
            await session.execute(
                select(Delivery.id, Delivery.member_id, Delivery.channel)
                .where(Delivery.job_id == job.id, Delivery.status == DeliveryStatus.queued.value)
                .order_by(Delivery.created_at, Delivery.id)
            )
        )
        by_id = {m.id: m for m in members}
        by_name = {c.name: c for c in channels}
        stale = [d for d, m, c in queued if m not in by_id or c not in by_name]
        if stale:  # left the audience, or the channel is gone, since a crashed attempt
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(stale), Delivery.status == DeliveryStatus.queued.value)
                .values(status=DeliveryStatus.failed.value, last_error="no longer applies")
            )
            await session.commit()
        pending = [(d, by_id[m], by_name[c]) for d, m, c in queued if d not in stale]
        board = await subject.board(session, job)
        still_claimed = (
            select(Job.id).where(Job.id == job.id, Job.status == JobStatus.claimed.value).exists()
        )
        renewed = now() - lease  # renew as the sending starts, then every third of the lease
        for start in range(0, len(pending), SEND_CONCURRENCY):
            if now() - renewed > lease / 3:
                renewed = now()
                await renew_lease(session, job.id, renewed, lease)
            batch = pending[start : start + SEND_CONCURRENCY]
            # Committed as ``sending`` just before the call: a crash from here on can lose these
            # few messages (at most SEND_CONCURRENCY), never send them twice.
            mine = set(
                await session.scalars(
                    update(Delivery)
                    .where(
                        Delivery.id.in_([d for d, _, _ in batch]),
                        Delivery.status == DeliveryStatus.queued.value,
                        still_claimed,
                    )
                    .values(status=DeliveryStatus.sending.value, attempts=Delivery.attempts + 1)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
            )
            await session.commit()
            if not mine and await session.scalar(select(still_claimed)) is False:
                # The event was moved, cancelled or deleted while this job was going out: the
                # rest would carry the old time. The event's new jobs will tell everyone.
                await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.job_id == job.id,
                        Delivery.status == DeliveryStatus.queued.value,
                    )
                    .values(status=DeliveryStatus.failed.value, last_error="the event changed")
                )
                await session.commit()
                report.count("dropped")
                return report
            sends = [
                _Send(d, member, channel, job, subject, board, workspace.rate_per_second)
                for d, member, channel in batch
                if d in mine
            ]
            await _send_and_record(session, sends, secret, now, channels, report, pace)
        telegram = by_name.get("telegram")
        if telegram is not None and await announce(session, job, subject, telegram, secret, now()):
            report.count("announced")
        await finish_job(session, job.id, now())
        await session.commit()
    return report


@dataclass(frozen=True)
class _Send:
    delivery_id: uuid.UUID
    member: Member
    channel: Channel
    job: Job
    subject: Subject
    board: ConfirmationBoard | None
    rate: float | None = None  # the workspace's own messages-a-second limit


async def _send_and_record(
    session: AsyncSession,
    sends: Sequence[_Send],
    secret: bytes,
    now: Callable[[], datetime],
    channels: Sequence[Channel],
    report: DispatchReport,
    pace: Pace | None = None,
) -> None:
    """Send a few at once (the rate limiter paces them), then record every outcome."""
    outcomes = await asyncio.gather(*(_send(s, secret, pace) for s in sends))
    at = now()
    sent = []
    for s, outcome in zip(sends, outcomes, strict=True):
        report.count(outcome.kind.value)
        if outcome.kind is OutcomeKind.sent:
            sent.append(
                {
                    "id": s.delivery_id,
                    "status": DeliveryStatus.sent.value,
                    "provider_message_id": outcome.provider_message_id,
                    "sent_at": at,
                    "last_error": None,
                }
            )
        else:
            await record_outcome(
                session, s.delivery_id, s.member, s.channel.name, outcome, at, channels
            )
    if sent:  # the common case, in one round trip
        await session.execute(update(Delivery), sent)
    await session.commit()


def _address(channel: Channel, member: Member) -> str:
    address = channel.address(member)
    assert address is not None  # rows are only made for members the channel has an address for
    return address


async def record_outcome(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    member: Member,
    channel: str,
    outcome: Outcome,
    now: datetime,
    channels: Sequence[Channel],
) -> None:
    """Write what the channel answered. An unreachable channel is blocked for the member (their
    tags stay); see core.notify.reachability."""
    values: dict[str, object] = {"last_error": outcome.reason or None}
    if outcome.kind is OutcomeKind.sent:
        values |= {
            "status": DeliveryStatus.sent.value,
            "provider_message_id": outcome.provider_message_id,
            "sent_at": now,
        }
    elif outcome.kind is OutcomeKind.retry:
        wait = timedelta(seconds=outcome.retry_after or 1)
        values |= {"status": DeliveryStatus.deferred.value, "next_attempt_at": now + wait}
        if outcome.rate_limited:
            values["attempts"] = Delivery.attempts - 1
    elif outcome.kind is OutcomeKind.unreachable:
        values |= {"status": DeliveryStatus.unreachable.value}
        await mark_unreachable(session, member, channel, outcome.reason, now, channels)
    else:
        values |= {"status": DeliveryStatus.failed.value}
    await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


async def retry_deferred(
    sessions: async_sessionmaker[AsyncSession],
    channels: Sequence[Channel],
    secret: bytes,
    now: Callable[[], datetime],
    *,
    limit: int = 200,
    pace: Pace | None = None,
) -> DispatchReport:
    """Send again the deliveries a channel asked to retry (429, 5xx, timeouts) whose wait is over.

    A few at a time, each claimed with SKIP LOCKED and committed as ``sending`` before the channel
    is called, like a first attempt; after MAX_ATTEMPTS a delivery fails with the last reason.
    """
    report = DispatchReport()
    by_name = {c.name: c for c in channels}
    done = 0
    async with sessions() as session:
        while done < limit:
            due = (
                select(Delivery.id)
                .where(
                    Delivery.status == DeliveryStatus.deferred.value,
                    Delivery.next_attempt_at <= now(),
                    Delivery.channel.in_(list(by_name)),
                )
                .order_by(Delivery.next_attempt_at)
                .limit(min(SEND_CONCURRENCY, limit - done))
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            claimed = list(
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(due))
                    .values(status=DeliveryStatus.sending.value, attempts=Delivery.attempts + 1)
                    .returning(
                        Delivery.id,
                        Delivery.job_id,
                        Delivery.member_id,
                        Delivery.channel,
                        Delivery.attempts,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            await session.commit()
            if not claimed:
                break
            done += len(claimed)
            sends: list[_Send] = []
            for delivery_id, job_id, member_id, channel_name, attempts in claimed:
                job = await session.get_one(Job, job_id)
                subject = await subject_of(session, job)
                member = await session.get_one(Member, member_id)
                channel = by_name[channel_name]
                reason = await _why_not_retry(
                    session, job, subject, member, channel, attempts, now()
                )
                if reason is None:
                    board = await subject.board(session, job)
                    workspace = await session.get_one(Workspace, job.workspace_id)
                    rate = workspace.rate_per_second
                    sends.append(_Send(delivery_id, member, channel, job, subject, board, rate))
                    continue
                outcome = Outcome(OutcomeKind.failed, reason=reason)
                await record_outcome(
                    session, delivery_id, member, channel_name, outcome, now(), channels
                )
                report.count(outcome.kind.value)
            await _send_and_record(session, sends, secret, now, channels, report, pace)
    return report


def next_utc_day(now: datetime) -> datetime:
    return utc_midnight(now.date() + timedelta(days=1))


async def daily_allowance(session: AsyncSession, workspace: Workspace, now: datetime) -> int | None:
    """How many more messages the workspace may send today (UTC), or None without a limit.
    Counts what went out today and what is queued or on the wire now."""
    if workspace.daily_limit is None:
        return None
    midnight = utc_midnight(now.date())
    used = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.workspace_id == workspace.id,
            or_(
                and_(Delivery.status == DeliveryStatus.sent.value, Delivery.sent_at >= midnight),
                Delivery.status.in_([DeliveryStatus.queued.value, DeliveryStatus.sending.value]),
            ),
        )
    )
    return max(0, workspace.daily_limit - (used or 0))


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
    if at >= subject.useful_until(job):
        return "too late: the moment it was for has passed"
    if (
        channel.address(member) is None
        or subject.gone is not None
        or member.status == MemberStatus.unreachable.value
        or (member.id, channel.name) in await blocked_channels(session, [member.id])
    ):
        return "no longer applies"
    return None
