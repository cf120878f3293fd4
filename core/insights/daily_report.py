"""The leads' daily report: a short message in the bot, without asking, at each lead's own
local time (``Member.daily_report_at``, 09:00 by default; None turns it off).

It covers the last complete UTC day (the days the statistics page and API show, so the figures
are the same): members new, unsubscribed and newly unreachable, members active and inactive now,
messages sent against the workspace's daily limit, failures, signals by name, and each active
journey's entries and arrivals per step. The scheduler plans it (``plan_daily_reports``): one
``lead_reports`` row per lead and local day, unique, so two schedulers make one report, and one
job through the engine, so it is sent once, within rate limits, like any message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Date, DateTime, ForeignKey, UniqueConstraint, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, TenantMixin
from core.delivery.channels import OutboundMessage
from core.delivery.models import Job, JobStatus
from core.delivery.subjects import Outlets, register
from core.insights.statistics import workspace_stats
from core.journeys.models import Journey, JourneyDay, JourneyStatus, JourneyStepDay, Signal
from core.plurals import Plural
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import Member, MemberRole, MemberStatus, Role
from core.teams.self_service import actor_of

KIND = "daily_report"
# A report whose time passed while no scheduler ran still goes this late, not later.
GRACE = timedelta(hours=6)
USEFUL_FOR = timedelta(hours=12)
JOURNEYS_LISTED = 10


class LeadReport(TenantMixin, Base):
    """One lead's report for one local day: planned once (unique), its figures fixed then."""

    __tablename__ = "lead_reports"
    __table_args__ = (UniqueConstraint("member_id", "local_day"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    local_day: Mapped[date] = mapped_column(Date)
    day: Mapped[date] = mapped_column(Date)  # the UTC day it covers
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StepFigure(BaseModel):
    title: str
    reached: int


class JourneyFigures(BaseModel):
    name: str
    entered: int
    finished: int
    steps: list[StepFigure]


class ReportFigures(BaseModel):
    day: date = Field(description="The UTC day the report covers")
    new_members: int
    unsubscribed: int
    newly_unreachable: int
    active: int = Field(description="Active members now")
    inactive: int = Field(description="Unsubscribed or unreachable members now")
    sent: int
    daily_limit: int | None
    failed: int
    signals: dict[str, int]
    journeys: list[JourneyFigures]
    app_url: str


async def compose(session: AsyncSession, lead: Member, day: date, app_url: str) -> ReportFigures:
    """The figures of ``day`` for the lead's workspace, from the statistics the API serves."""
    actor = await actor_of(session, lead, via="daily report")
    stats = await workspace_stats(session, actor, since=day, until=day)
    [today] = stats.days
    ws = lead.workspace_id
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    signals = dict(
        (name, int(n))
        for name, n in await session.execute(
            select(Signal.name, func.count())
            .where(
                Signal.workspace_id == ws,
                Signal.received_at >= start,
                Signal.received_at < start + timedelta(days=1),
            )
            .group_by(Signal.name)
            .order_by(Signal.name)
        )
    )
    journeys = []
    active = await session.scalars(
        select(Journey)
        .where(Journey.workspace_id == ws, Journey.status == JourneyStatus.active.value)
        .order_by(Journey.name)
        .limit(JOURNEYS_LISTED)
    )
    for journey in active:
        totals = await session.get(JourneyDay, (journey.id, day))
        reached = dict(
            (k, n)
            for k, n in await session.execute(
                select(JourneyStepDay.step_key, JourneyStepDay.reached).where(
                    JourneyStepDay.journey_id == journey.id, JourneyStepDay.day == day
                )
            )
        )
        steps = [
            StepFigure(
                title=str(s.get("title") or f"{i + 1}. {s['key']}"), reached=reached[s["key"]]
            )
            for i, s in enumerate(journey.steps)
            if reached.get(s["key"])
        ]
        journeys.append(
            JourneyFigures(
                name=journey.name,
                entered=totals.entered if totals else 0,
                finished=totals.finished if totals else 0,
                steps=steps,
            )
        )
    return ReportFigures(
        day=day,
        new_members=today.new_members,
        unsubscribed=today.unsubscribed,
        newly_unreachable=today.blocked,
        active=stats.members.active,
        inactive=stats.members.unsubscribed + stats.members.unreachable,
        sent=sum(today.sent.values()),
        daily_limit=stats.daily_limit,
        failed=today.failed + today.unreachable,
        signals=signals,
        journeys=journeys,
        app_url=app_url,
    )


def _leads() -> Any:
    return (
        select(Member)
        .join(MemberRole, MemberRole.member_id == Member.id)
        .join(Role, Role.id == MemberRole.role_id)
        .where(
            Role.builtin.is_(True),
            Role.name.in_([BuiltinRole.owner.value, BuiltinRole.lead.value]),
            Member.status == MemberStatus.active.value,
            Member.daily_report_at.is_not(None),
        )
        .distinct()
    )


async def plan_daily_reports(session: AsyncSession, now: datetime, public_url: str) -> int:
    """Make the report of every lead whose local report time has come today and who has not
    had today's yet, with its job due now. Safe to run from any number of schedulers at once.
    Returns how many were made; the caller commits."""
    made = 0
    app_url = f"{public_url.rstrip('/')}/app/stats"
    for lead in list(await session.scalars(_leads())):
        assert lead.daily_report_at is not None
        local = now.astimezone(ZoneInfo(lead.timezone))
        due = datetime.combine(local.date(), lead.daily_report_at, tzinfo=local.tzinfo)
        if not due <= local < due + GRACE:
            continue
        day = now.astimezone(UTC).date() - timedelta(days=1)
        report_id = await session.scalar(
            pg_insert(LeadReport)
            .values(
                id=uuid.uuid4(),
                workspace_id=lead.workspace_id,
                member_id=lead.id,
                local_day=local.date(),
                day=day,
                content={},
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["member_id", "local_day"])
            .returning(LeadReport.id)
        )
        if report_id is None:
            continue  # made already (by this scheduler or another)
        figures = await compose(session, lead, day, app_url)
        report = await session.get_one(LeadReport, report_id)
        report.content = figures.model_dump(mode="json")
        session.add(
            Job(
                id=uuid.uuid4(),
                workspace_id=lead.workspace_id,
                lead_report_id=report_id,
                kind=KIND,
                occurrence="",
                occurrence_start=now,
                due_at=now,
                status=JobStatus.pending,
                idempotency_key=f"daily-report:{lead.id}:{local.date().isoformat()}",
                attempts=0,
            )
        )
        made += 1
    await session.flush()
    return made


_WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "title": "vestnik — {day:%d %b %Y} (UTC)",
        "members": "Members: +{new} new, {unsub} unsubscribed, {unreachable} newly unreachable; "
        "now {active} active, {inactive} inactive.",
        "sent": "Messages sent: {sent}",
        "limit": " of {limit} a day",
        "failed": Plural("en", one="{n} failed.", other="{n} failed."),
        "signals": "Signals: {what}.",
        "journey": "“{name}”: {entered} entered, {finished} finished",
        "open": "Open statistics",
    },
    "ru": {
        "title": "vestnik — {day:%d.%m.%Y} (UTC)",
        "members": "Участники: +{new} новых, {unsub} отписались, {unreachable} стали недоступны; "
        "сейчас {active} активны, {inactive} неактивны.",
        "sent": "Отправлено сообщений: {sent}",
        "limit": " из {limit} в день",
        "failed": Plural(
            "ru",
            one="{n} не дошло.",
            few="{n} не дошли.",
            many="{n} не дошли.",
            other="{n} не дошли.",
        ),
        "signals": "Сигналы: {what}.",
        "journey": "«{name}»: вошли {entered}, закончили {finished}",
        "open": "Открыть статистику",
    },
}


def render(figures: ReportFigures, locale: str) -> OutboundMessage:
    w = _WORDS.get(locale, _WORDS["en"])
    lines = [w["title"].format(day=figures.day)]
    lines.append(
        w["members"].format(
            new=figures.new_members,
            unsub=figures.unsubscribed,
            unreachable=figures.newly_unreachable,
            active=figures.active,
            inactive=figures.inactive,
        )
    )
    sent = w["sent"].format(sent=figures.sent)
    if figures.daily_limit is not None:
        sent += w["limit"].format(limit=figures.daily_limit)
    lines.append(f"{sent}; {w['failed'].format(n=figures.failed)}")
    if figures.signals:
        what = ", ".join(f"{name} {n}" for name, n in figures.signals.items())
        lines.append(w["signals"].format(what=what))
    for j in figures.journeys:
        line = w["journey"].format(name=j.name, entered=j.entered, finished=j.finished)
        if j.steps:
            line += ": " + ", ".join(f"{s.title} {s.reached}" for s in j.steps)
        lines.append(line)
    url = figures.app_url
    # Telegram refuses link buttons to a local address; there the link is in the text.
    if url.startswith("https://"):
        return OutboundMessage(text="\n".join(lines), links=[(w["open"], url)])
    return OutboundMessage(text="\n".join([*lines, f"{w['open']}: {url}"]))


@dataclass(frozen=True)
class DailyReportSubject:
    job: Job
    report: LeadReport

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.report.workspace_id

    @property
    def gone(self) -> str | None:
        return None

    def recipients(self) -> Any:
        return select(Member).where(
            Member.id == self.report.member_id, Member.status == MemberStatus.active.value
        )

    def useful_until(self) -> datetime:
        return self.job.occurrence_start + USEFUL_FOR

    def local_due(self, member: Member) -> datetime | None:
        return None

    async def board(self, session: AsyncSession) -> object | None:
        return None

    def message(self, member: Member, board: object | None) -> OutboundMessage:
        return render(ReportFigures.model_validate(self.report.content), member.locale)

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        return 0


async def _load(session: AsyncSession, job: Job) -> DailyReportSubject:
    assert job.lead_report_id is not None
    return DailyReportSubject(job, await session.get_one(LeadReport, job.lead_report_id))


def install() -> None:
    register(KIND, _load)
