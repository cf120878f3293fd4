"""Delivery and reach figures, from the delivery and confirmation rows (one source of truth).

Per broadcast and per event the figures are counted from that subject's own delivery rows (an
index lookup by job). Per workspace and day they come from ``delivery_tallies`` and
``send_seconds``, which triggers keep exact as deliveries are written (migration 0010), so the
dashboard reads a few hundred rows however many deliveries the workspace has made.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Date, Select, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, audience_query
from core.audit import MEMBER_BLOCKED, MEMBER_UNSUBSCRIBED, AuditEntry
from core.clock import utcnow
from core.delivery.models import Delivery, DeliveryStatus, DeliveryTally, Job, SendSecond
from core.errors import Invalid
from core.events.models import Answer, Confirmation, Event
from core.notify.broadcasts import Progress
from core.notify.models import Broadcast, JobKind
from core.scoping import get_scoped
from core.teams.models import Member, MemberStatus, Workspace
from core.teams.permissions import Action, Actor
from core.timezones import utc_midnight

MAX_DAYS = 366
DEFAULT_DAYS = 30


class Outcomes(Progress):
    """What happened to the messages: each delivery counted once, by its status now."""

    failed_by_reason: dict[str, int] = Field(default_factory=dict)
    unreachable_by_reason: dict[str, int] = Field(default_factory=dict)
    unknown_by_reason: dict[str, int] = Field(default_factory=dict)
    sent_by_channel: dict[str, int] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(getattr(self, s.value) for s in DeliveryStatus)

    def add(self, status: str, channel: str, reason: str | None, n: int) -> None:
        setattr(self, status, getattr(self, status) + n)
        if status == DeliveryStatus.sent.value:
            self.sent_by_channel[channel] = self.sent_by_channel.get(channel, 0) + n
        by_reason = {
            DeliveryStatus.failed.value: self.failed_by_reason,
            DeliveryStatus.unreachable.value: self.unreachable_by_reason,
            DeliveryStatus.unknown.value: self.unknown_by_reason,
        }.get(status)
        if by_reason is not None:
            key = reason or "unknown"
            by_reason[key] = by_reason.get(key, 0) + n


class Answers(BaseModel):
    going: int = 0
    not_going: int = 0
    maybe: int = 0
    asked: int = Field(0, description="Members a confirmation request reached")
    first_answer_after_seconds: float | None = Field(
        None,
        description="From the first confirmation request sent to the first answer (median over "
        "the occurrences that have both)",
    )


class SubjectStats(BaseModel):
    kind: str = Field(description="broadcast or event")
    id: uuid.UUID
    title: str
    audience: int = Field(description="Members the audience reaches now")
    addressed: int = Field(description="Members a delivery was made for")
    deliveries: Outcomes
    answers: Answers | None = Field(description="Events only: broadcasts ask for no answer")


async def _outcomes(session: AsyncSession, jobs: Select[Any]) -> Outcomes:
    rows = await session.execute(
        select(Delivery.status, Delivery.channel, Delivery.last_error, func.count())
        .where(Delivery.job_id.in_(jobs))
        .group_by(Delivery.status, Delivery.channel, Delivery.last_error)
    )
    outcomes = Outcomes()
    for status, channel, reason, n in rows:
        outcomes.add(status, channel, reason, n)
    return outcomes


async def _subject_stats(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    kind: str,
    subject_id: uuid.UUID,
    title: str,
    audience: dict[str, Any],
    jobs: Select[Any],
    answers: Answers | None,
) -> SubjectStats:
    rule = AudienceRule.model_validate(audience)
    reached = await session.scalar(
        audience_query(workspace_id, rule).with_only_columns(func.count()).order_by(None)
    )
    addressed = await session.scalar(
        select(func.count(func.distinct(Delivery.member_id))).where(Delivery.job_id.in_(jobs))
    )
    return SubjectStats(
        kind=kind,
        id=subject_id,
        title=title,
        audience=reached or 0,
        addressed=addressed or 0,
        deliveries=await _outcomes(session, jobs),
        answers=answers,
    )


async def broadcast_stats(
    session: AsyncSession, actor: Actor, broadcast_id: uuid.UUID
) -> SubjectStats:
    actor.require(Action.manage_events)
    broadcast = await get_scoped(session, Broadcast, actor.workspace_id, broadcast_id, "broadcast")
    return await _subject_stats(
        session,
        actor.workspace_id,
        "broadcast",
        broadcast.id,
        broadcast.text.split("\n", 1)[0][:120],
        broadcast.audience,
        select(Job.id).where(Job.broadcast_id == broadcast.id),
        None,
    )


async def event_stats(session: AsyncSession, actor: Actor, event_id: uuid.UUID) -> SubjectStats:
    """Every occurrence's reminders, requests, nudges and summaries, and every answer."""
    actor.require(Action.manage_events)
    event = await get_scoped(session, Event, actor.workspace_id, event_id, "event")
    return await _subject_stats(
        session,
        actor.workspace_id,
        "event",
        event.id,
        event.title,
        event.audience,
        select(Job.id).where(Job.event_id == event.id),
        await _answers(session, event.id),
    )


async def _answers(session: AsyncSession, event_id: uuid.UUID) -> Answers:
    counts = dict(
        (
            await session.execute(
                select(Confirmation.answer, func.count())
                .where(Confirmation.event_id == event_id)
                .group_by(Confirmation.answer)
            )
        ).all()
    )
    requests = (
        select(
            Job.occurrence,
            func.min(Delivery.sent_at).label("first_sent"),
            func.count(func.distinct(Delivery.member_id)).label("asked"),
        )
        .join(Delivery, Delivery.job_id == Job.id)
        .where(
            Job.event_id == event_id,
            Job.kind == JobKind.confirmation_request.value,
            Delivery.status == DeliveryStatus.sent.value,
        )
        .group_by(Job.occurrence)
        .subquery()
    )
    answers = (
        select(Confirmation.occurrence, func.min(Confirmation.answered_at).label("first"))
        .where(Confirmation.event_id == event_id)
        .group_by(Confirmation.occurrence)
        .subquery()
    )
    wait = func.extract("epoch", answers.c.first - requests.c.first_sent)
    row = (
        await session.execute(
            select(
                select(func.coalesce(func.sum(requests.c.asked), 0)).scalar_subquery(),
                select(func.percentile_cont(0.5).within_group(wait))
                .select_from(requests.join(answers, answers.c.occurrence == requests.c.occurrence))
                .where(answers.c.first >= requests.c.first_sent)
                .scalar_subquery(),
            )
        )
    ).one()
    return Answers(
        going=counts.get(Answer.going, 0),
        not_going=counts.get(Answer.not_going, 0),
        maybe=counts.get(Answer.maybe, 0),
        asked=int(row[0]),
        first_answer_after_seconds=float(row[1]) if row[1] is not None else None,
    )


class DayStats(BaseModel):
    day: date
    sent: dict[str, int] = Field(default_factory=dict, description="Messages sent, per channel")
    failed: int = 0
    unreachable: int = 0
    not_joined: int = Field(0, description="Messages a bot could not send: never opened the bot")
    unknown: int = Field(0, description="Messages whose fate is unknown (a worker stopped)")
    peak_per_second: dict[str, int] = Field(
        default_factory=dict, description="The busiest second's messages, per channel"
    )
    new_members: int = 0
    unsubscribed: int = 0
    blocked: int = Field(0, description="Members a channel stopped reaching (blocked the bot…)")
    confirmation_requests: int = Field(0, description="Confirmation requests sent")
    answers: int = Field(0, description="Answers given (going, not going, maybe)")

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def answer_rate(self) -> float | None:
        """Answers given per confirmation request sent, that day."""
        if not self.confirmation_requests:
            return None
        return round(self.answers / self.confirmation_requests, 3)


class MemberCounts(BaseModel):
    active: int = 0
    unsubscribed: int = 0
    unreachable: int = 0
    answered_in_period: int = Field(0, description="Members who answered at least once")


class WorkspaceStats(BaseModel):
    since: date
    until: date
    daily_limit: int | None
    rate_per_second: float | None
    days: list[DayStats]
    members: MemberCounts
    answer_rate: list[float | None] = Field(
        description="Per day, answers given per confirmation request sent (the trend)"
    )


def period(since: date | None, until: date | None, today: date) -> tuple[date, date]:
    """The days asked for: the last DEFAULT_DAYS by default, at most MAX_DAYS."""
    until = until or today
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise Invalid("since", "comes after until")
    if (until - since).days >= MAX_DAYS:
        raise Invalid("since", f"give at most {MAX_DAYS} days")
    return since, until


def _day_of(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


async def workspace_stats(
    session: AsyncSession, actor: Actor, since: date | None = None, until: date | None = None
) -> WorkspaceStats:
    """One row per UTC day of the period, and the members as they are now."""
    actor.require(Action.manage_events)
    since, until = period(since, until, utcnow().date())
    ws = actor.workspace_id
    start, end = utc_midnight(since), utc_midnight(until + timedelta(days=1))
    days = {
        since + timedelta(days=i): DayStats(day=since + timedelta(days=i))
        for i in range((until - since).days + 1)
    }

    tallies = await session.execute(
        select(
            DeliveryTally.day,
            DeliveryTally.channel,
            DeliveryTally.kind,
            DeliveryTally.status,
            func.sum(DeliveryTally.n),
        )
        .where(DeliveryTally.workspace_id == ws, DeliveryTally.day.between(since, until))
        .group_by(
            DeliveryTally.day, DeliveryTally.channel, DeliveryTally.kind, DeliveryTally.status
        )
    )
    for day, channel, kind, status, n in tallies:
        d = days[day]
        if status == DeliveryStatus.sent.value:
            d.sent[channel] = d.sent.get(channel, 0) + int(n)
            if kind == JobKind.confirmation_request.value:
                d.confirmation_requests += int(n)
        elif status == DeliveryStatus.failed.value:
            d.failed += int(n)
        elif status == DeliveryStatus.unreachable.value:
            d.unreachable += int(n)
        elif status == DeliveryStatus.not_joined.value:
            d.not_joined += int(n)
        elif status == DeliveryStatus.unknown.value:
            d.unknown += int(n)

    second_day = _day_of(SendSecond.second)
    peaks = await session.execute(
        select(second_day, SendSecond.channel, func.max(SendSecond.n))
        .where(SendSecond.workspace_id == ws, SendSecond.second >= start, SendSecond.second < end)
        .group_by(second_day, SendSecond.channel)
    )
    for day, channel, n in peaks:
        days[day].peak_per_second[channel] = int(n)

    for day, n in await _per_day(session, Member.created_at, Member.workspace_id == ws, start, end):
        days[day].new_members = n
    for day, n in await _per_day(
        session, Confirmation.answered_at, Confirmation.workspace_id == ws, start, end
    ):
        days[day].answers = n
    for action, attr in ((MEMBER_UNSUBSCRIBED, "unsubscribed"), (MEMBER_BLOCKED, "blocked")):
        for day, n in await _per_day(
            session,
            AuditEntry.at,
            (AuditEntry.workspace_id == ws) & (AuditEntry.action == action),
            start,
            end,
        ):
            setattr(days[day], attr, n)

    workspace = await session.get_one(Workspace, ws)
    ordered = [days[d] for d in sorted(days)]
    return WorkspaceStats(
        since=since,
        until=until,
        daily_limit=workspace.daily_limit,
        rate_per_second=workspace.rate_per_second,
        days=ordered,
        members=await _member_counts(session, ws, start, end),
        answer_rate=[d.answer_rate for d in ordered],
    )


async def _per_day(
    session: AsyncSession, column: Any, where: Any, start: datetime, end: datetime
) -> Sequence[tuple[date, int]]:
    day = _day_of(column)
    rows = await session.execute(
        select(day, func.count()).where(where, column >= start, column < end).group_by(day)
    )
    return [(d, int(n)) for d, n in rows]


async def _member_counts(
    session: AsyncSession, ws: uuid.UUID, start: datetime, end: datetime
) -> MemberCounts:
    by_status: dict[str, int] = defaultdict(int)
    for status, n in await session.execute(
        select(Member.status, func.count()).where(Member.workspace_id == ws).group_by(Member.status)
    ):
        by_status[status] = int(n)
    answered = await session.scalar(
        select(func.count(func.distinct(Confirmation.member_id))).where(
            Confirmation.workspace_id == ws,
            Confirmation.answered_at >= start,
            Confirmation.answered_at < end,
        )
    )
    return MemberCounts(
        active=by_status[MemberStatus.active.value],
        unsubscribed=by_status[MemberStatus.unsubscribed.value],
        unreachable=by_status[MemberStatus.unreachable.value],
        answered_in_period=answered or 0,
    )


class DeliveryRow(BaseModel):
    member: str
    channel: str
    kind: str
    occurrence: str
    status: str
    reason: str
    created_at: datetime
    sent_at: datetime | None


async def delivery_rows(
    session: AsyncSession, actor: Actor, subject: str, subject_id: uuid.UUID
) -> list[DeliveryRow]:
    """Every delivery of one broadcast or event, by member: the CSV export's rows."""
    actor.require(Action.manage_events)
    if subject == "broadcast":
        await get_scoped(session, Broadcast, actor.workspace_id, subject_id, "broadcast")
        which = Job.broadcast_id == subject_id
    else:
        await get_scoped(session, Event, actor.workspace_id, subject_id, "event")
        which = Job.event_id == subject_id
    rows = await session.execute(
        select(
            Member.name,
            Delivery.channel,
            Job.kind,
            Job.occurrence,
            Delivery.status,
            Delivery.last_error,
            Delivery.created_at,
            Delivery.sent_at,
        )
        .join(Job, Job.id == Delivery.job_id)
        .join(Member, Member.id == Delivery.member_id)
        .where(which, Delivery.workspace_id == actor.workspace_id)
        .order_by(Job.occurrence_start, Job.kind, Member.name, Delivery.channel)
    )
    return [
        DeliveryRow(
            member=name,
            channel=channel,
            kind=kind,
            occurrence=occurrence,
            status=status,
            reason=reason or "",
            created_at=created,
            sent_at=sent,
        )
        for name, channel, kind, occurrence, status, reason, created, sent in rows
    ]


async def recent_events(session: AsyncSession, actor: Actor, limit: int = 5) -> list[uuid.UUID]:
    """Events that have sent something, the latest first."""
    actor.require(Action.manage_events)
    latest = func.max(Job.due_at)
    return list(
        await session.scalars(
            select(Job.event_id)
            .join(Event, Event.id == Job.event_id)
            .where(
                Job.workspace_id == actor.workspace_id,
                Job.event_id.is_not(None),
                Event.deleted_at.is_(None),
                Job.due_at <= utcnow(),
            )
            .group_by(Job.event_id)
            .order_by(latest.desc())
            .limit(limit)
        )
    )
