"""How members get into journeys and how their replies move them on.

Entering: on a happening (core.teams.happenings: joined, tag added or removed, code word), on a
signal, and by the sweeps the worker runs every half minute for what no single change announces
(inactive for N days, a schedule in each member's zone, a confirmation left unanswered at its
deadline). Every firing has an entry key, so a sweep that runs twice, or two workers sweeping at
once, enter nobody twice.

Replies: a button under a step's message, a code word or a signal moves a run waiting at a
``wait_for_reply`` step to the branch it names; the runner carries it on from there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audience.rule import AudienceRule, audience_query
from core.clock import utcnow
from core.delivery.answer_buttons import BUTTON_VERSION, LINK_VERSION, decode_answer
from core.delivery.models import Delivery, DeliveryStatus, Job, JobStatus
from core.events.models import Confirmation
from core.journeys import runs
from core.journeys.conditions import compare
from core.journeys.definition import Schedule, WaitForReply
from core.journeys.models import (
    Journey,
    JourneyLog,
    JourneyRun,
    JourneyStatus,
    RunStage,
    RunStatus,
    Signal,
)
from core.journeys.runner import Plan
from core.journeys.subject import MESSAGE
from core.meaning.judge import Intent, match_phrase, read_answer
from core.teams.accounts import Person
from core.teams.happenings import Happening
from core.teams.models import Member, MemberStatus

log = logging.getLogger(__name__)
SCHEDULE_GRACE = timedelta(hours=6)  # a schedule missed (worker down) still fires this late
UNANSWERED_LOOKBACK = timedelta(days=2)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S.%f")


async def _journeys(session: AsyncSession, workspace_id: uuid.UUID, kind: str) -> list[Journey]:
    return list(
        await session.scalars(
            select(Journey).where(
                Journey.workspace_id == workspace_id,
                Journey.status == JourneyStatus.active.value,
                Journey.trigger["type"].astext == kind,
            )
        )
    )


async def on_happening(session: AsyncSession, happening: Happening) -> None:
    now = utcnow()
    for journey in await _journeys(session, happening.workspace_id, happening.kind):
        ref = next(
            (v for k, v in journey.trigger.items() if k.endswith("_id") and k != "event_id"), None
        )
        if ref is not None and ref != str(happening.ref):
            continue
        await runs.enter(
            session, journey, happening.member_ids, f"{happening.kind}:{_stamp(now)}", now
        )
    if happening.kind == "code_word" and happening.ref is not None:
        for member_id in happening.member_ids:
            await _reply(
                session,
                member_id,
                now,
                lambda step: next(
                    (
                        (c.to, "code word")
                        for c in step.code_words
                        if c.code_word_id == happening.ref
                    ),
                    None,
                ),
            )


async def on_signal(session: AsyncSession, signal: Signal, now: datetime) -> None:
    """Enter the journeys this signal fires; move on the runs waiting for it."""
    for journey in await _journeys(session, signal.workspace_id, "signal"):
        t = journey.trigger
        if t.get("name") != signal.name or not compare(signal.value, t.get("op"), t.get("value")):
            continue
        await runs.enter(session, journey, [signal.member_id], f"signal:{signal.id}", now)
    await _reply(
        session,
        signal.member_id,
        now,
        lambda step: next(
            (
                (s.to, f"signal {signal.name}")
                for s in step.signals
                if s.name == signal.name and compare(signal.value, s.op, s.value)
            ),
            None,
        ),
    )


Branch = Callable[[WaitForReply], "tuple[str | None, str] | None"]


async def _reply(session: AsyncSession, member_id: uuid.UUID, now: datetime, branch: Branch) -> int:
    """Move on every run of the member waiting for a reply that ``branch`` recognises."""
    waiting = list(
        await session.scalars(
            select(JourneyRun)
            .join(Journey, Journey.id == JourneyRun.journey_id)
            .where(
                JourneyRun.member_id == member_id,
                JourneyRun.status == RunStatus.active.value,
                JourneyRun.stage == RunStage.wait.value,
                Journey.status == JourneyStatus.active.value,
            )
            .with_for_update(of=JourneyRun)
        )
    )
    moved = 0
    for run in waiting:
        plan = Plan(await session.get_one(Journey, run.journey_id))
        step = plan.steps.get(run.step_key or "")
        if not isinstance(step, WaitForReply):
            continue
        found = branch(step)
        if found is None:
            continue
        to, how = found
        await runs.go(session, run, to or plan.following[step.key], now, branch=how)
        moved += 1
    return moved


class ChoiceVerdict(StrEnum):
    moved = "moved"
    forged = "forged"
    not_yours = "not_yours"
    closed = "closed"  # the question is not open any more (answered, timed out, run ended)
    open = "open"  # described, not answered (an emailed link's confirmation page)


@dataclass(frozen=True)
class ChoiceResult:
    verdict: ChoiceVerdict
    label: str = ""
    locale: str = "en"


def is_choice(key: bytes, data: str, *, link: bool = False) -> bool:
    button = decode_answer(key, data, LINK_VERSION if link else BUTTON_VERSION)
    return button is not None and button.answer.startswith("choice")


@dataclass(frozen=True)
class _Pressed:
    job: Job
    member: Member
    visit: int
    index: int
    label: str


async def _pressed(session: AsyncSession, key: bytes, data: str, version: str) -> _Pressed | None:
    """The journey question a signed button or link names, or None if it names none."""
    button = decode_answer(key, data, version)
    if button is None or not button.answer.startswith("choice"):
        return None
    delivery = await session.get(Delivery, button.delivery_id)
    job = await session.get(Job, delivery.job_id) if delivery else None
    if delivery is None or job is None or job.kind != MESSAGE or job.journey_run_id is None:
        return None
    member = await session.get_one(Member, delivery.member_id)
    sent = (
        await session.execute(
            select(JourneyLog.visit, JourneyLog.detail).where(JourneyLog.job_id == job.id)
        )
    ).one()
    index = int(button.answer.removeprefix("choice"))
    labels = sent.detail.get("choices", [])
    label = labels[index] if index < len(labels) else ""
    return _Pressed(job, member, sent.visit, index, label)


async def describe_choice_link(session: AsyncSession, key: bytes, data: str) -> ChoiceResult:
    """What an emailed choice link would answer, without answering (mail scanners open links)."""
    pressed = await _pressed(session, key, data, LINK_VERSION)
    if pressed is None:
        return ChoiceResult(ChoiceVerdict.forged)
    return ChoiceResult(ChoiceVerdict.open, pressed.label, pressed.member.locale)


async def press_choice(
    session: AsyncSession,
    key: bytes,
    data: str,
    presser: Person | None,
    now: datetime,
) -> ChoiceResult:
    """A member pressed a button under a journey's question (``presser``, checked against the
    member it was sent to) or confirmed an emailed link (None: the signed link is the
    credential). The caller commits."""
    pressed = await _pressed(session, key, data, BUTTON_VERSION if presser else LINK_VERSION)
    if pressed is None:
        return ChoiceResult(ChoiceVerdict.forged)
    member = pressed.member
    if presser is not None and member.account_id(presser.messenger) != presser.external_id:
        return ChoiceResult(ChoiceVerdict.not_yours, locale=member.locale)
    member.last_activity_at = now
    run = await session.scalar(
        select(JourneyRun).where(JourneyRun.id == pressed.job.journey_run_id).with_for_update()
    )
    closed = ChoiceResult(ChoiceVerdict.closed, pressed.label, member.locale)
    if (
        run is None
        or run.status != RunStatus.active.value
        or run.visit != pressed.visit
        or run.stage != RunStage.wait.value
    ):
        return closed
    journey = await session.get_one(Journey, run.journey_id)
    if journey.status != JourneyStatus.active.value:
        return closed
    plan = Plan(journey)
    step = plan.steps.get(run.step_key or "")
    if not isinstance(step, WaitForReply) or pressed.index >= len(step.choices):
        return closed
    choice = step.choices[pressed.index]
    await runs.go(
        session, run, choice.to or plan.following[step.key], now, branch=f"button: {choice.label}"
    )
    return ChoiceResult(ChoiceVerdict.moved, pressed.label, member.locale)


# --- sweeps -----------------------------------------------------------------------------------


async def sweep(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Enter everyone the time-based triggers fire for now. Returns how many entered."""
    entered = 0
    async with sessions() as session:
        journeys = list(
            await session.scalars(
                select(Journey).where(
                    Journey.status == JourneyStatus.active.value,
                    Journey.trigger["type"].astext.in_(("inactive", "schedule", "unanswered")),
                )
            )
        )
        for journey in journeys:
            kind = journey.trigger["type"]
            if kind == "inactive":
                entered += await _inactive(session, journey, now)
            elif kind == "schedule":
                entered += await _scheduled(session, journey, now)
            else:
                entered += await _unanswered(session, journey, now)
            await session.commit()
    return entered


async def _inactive(session: AsyncSession, journey: Journey, now: datetime) -> int:
    days = int(journey.trigger["days"])
    seen = func.coalesce(Member.last_activity_at, Member.created_at)
    idle = select(Member.id).where(
        Member.workspace_id == journey.workspace_id,
        Member.status == MemberStatus.active.value,
        seen < now - timedelta(days=days),
    )
    # One entry per stretch of silence: the key is the moment the member was last seen.
    key = literal("inactive:") + cast(func.floor(func.extract("epoch", seen)), String)
    return await runs.enter(session, journey, idle, key, now)


async def _scheduled(session: AsyncSession, journey: Journey, now: datetime) -> int:
    trigger = Schedule.model_validate(journey.trigger)
    base = audience_query(journey.workspace_id, AudienceRule.model_validate(trigger.audience))
    zones = list(
        await session.scalars(
            select(Member.timezone).distinct().where(Member.workspace_id == journey.workspace_id)
        )
    )
    entered = 0
    for zone in zones:
        local = now.astimezone(ZoneInfo(zone))
        at = local.replace(
            hour=trigger.time.hour, minute=trigger.time.minute, second=0, microsecond=0
        )
        if local.isoweekday() not in trigger.weekdays or not at <= local < at + SCHEDULE_GRACE:
            continue
        members = base.where(Member.timezone == zone).with_only_columns(Member.id)
        key = f"schedule:{local.date().isoformat()}"
        entered += await runs.enter(session, journey, members, key, now)
    return entered


async def _unanswered(session: AsyncSession, journey: Journey, now: datetime) -> int:
    closed = select(Job.event_id, Job.occurrence).where(
        Job.workspace_id == journey.workspace_id,
        Job.kind == "deadline_summary",
        Job.status == JobStatus.done.value,
        Job.due_at <= now,
        Job.due_at > now - UNANSWERED_LOOKBACK,
    )
    if journey.trigger.get("event_id"):
        closed = closed.where(Job.event_id == uuid.UUID(journey.trigger["event_id"]))
    entered = 0
    for event_id, occurrence in (await session.execute(closed)).all():
        asked = (
            select(Delivery.member_id)
            .join(Job, Job.id == Delivery.job_id)
            .where(
                Job.event_id == event_id,
                Job.occurrence == occurrence,
                Job.kind == "confirmation_request",
                Delivery.status == DeliveryStatus.sent.value,
                ~exists(
                    select(Confirmation.member_id).where(
                        and_(
                            Confirmation.event_id == event_id,
                            Confirmation.occurrence == occurrence,
                            Confirmation.member_id == Delivery.member_id,
                        )
                    )
                ),
            )
        )
        key = f"unanswered:{event_id}:{occurrence}"
        entered += await runs.enter(session, journey, asked, key, now)
    return entered


# --- replies in words ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WordsChoice:
    """A typed reply to a journey's question: the choice it was read as (the run has moved
    on), or, when unclear, what to ask again with: the question's delivery and its labels."""

    label: str | None
    delivery_id: uuid.UUID | None
    labels: list[str]
    locale: str


def _pick(step: WaitForReply, text: str) -> tuple[int | None, bool]:
    """(the choice ``text`` means, whether it is related but unclear)."""
    reading = read_answer(text)
    picked: set[int] = set()
    unclear = reading.intent is Intent.unclear
    for i, choice in enumerate(step.choices):
        phrase = match_phrase(text, choice.label)
        if phrase.decision is Intent.yes:
            picked.add(i)
        elif phrase.decision is Intent.unclear:
            unclear = True
        answered = reading.intent in (Intent.yes, Intent.no, Intent.maybe)
        if answered and read_answer(choice.label).intent is reading.intent:
            picked.add(i)
    if len(picked) == 1:
        return picked.pop(), False
    return None, unclear or len(picked) > 1


async def choose_in_words(
    session: AsyncSession, member: Member, text: str, now: datetime
) -> WordsChoice | None:
    """Move the member's run waiting at a question with buttons the way ``text`` means. None
    if no question waits or the words are not about it. The caller commits."""
    waiting = list(
        await session.scalars(
            select(JourneyRun)
            .join(Journey, Journey.id == JourneyRun.journey_id)
            .where(
                JourneyRun.member_id == member.id,
                JourneyRun.status == RunStatus.active.value,
                JourneyRun.stage == RunStage.wait.value,
                Journey.status == JourneyStatus.active.value,
            )
            .order_by(JourneyRun.step_since.desc())
            .with_for_update(of=JourneyRun)
        )
    )
    for run in waiting:
        plan = Plan(await session.get_one(Journey, run.journey_id))
        step = plan.steps.get(run.step_key or "")
        if not isinstance(step, WaitForReply) or not step.choices:
            continue
        index, unclear = _pick(step, text)
        labels = [c.label for c in step.choices]
        if index is not None:
            member.last_activity_at = now
            choice = step.choices[index]
            await runs.go(
                session,
                run,
                choice.to or plan.following[step.key],
                now,
                branch=f"words: {text[:60]}",
            )
            return WordsChoice(choice.label, None, labels, member.locale)
        if unclear:
            asked = await session.scalar(
                select(Delivery.id)
                .join(JourneyLog, JourneyLog.job_id == Delivery.job_id)
                .where(
                    JourneyLog.run_id == run.id,
                    JourneyLog.visit == run.visit,
                    JourneyLog.action == "sent",
                    Delivery.member_id == member.id,
                )
                .limit(1)
            )
            return WordsChoice(None, asked, labels, member.locale)
    return None
