"""A member's free-text answer to a confirmation request ("буду", "не смогу", "may be"):
read by meaning (core.meaning) and recorded like a pressed button, or, when it is unclear,
handed back so the bot asks again with the buttons instead of guessing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.models import Delivery, DeliveryStatus, Job
from core.events.confirmations import save_answer
from core.events.models import Answer, Event, EventStatus
from core.meaning.judge import Intent, Reading, read_answer
from core.notify.models import JobKind
from core.teams.models import Member

# A request older than this is not what a member's words answer.
RECENT = timedelta(days=14)
_ANSWERS = {Intent.yes: Answer.going, Intent.no: Answer.not_going, Intent.maybe: Answer.maybe}


@dataclass(frozen=True)
class WordsAnswer:
    reading: Reading
    event_title: str
    delivery_id: uuid.UUID
    answer: Answer | None  # recorded; None: unclear, ask again with buttons (``delivery_id``)


async def _open_request(
    session: AsyncSession, member: Member, now: datetime
) -> tuple[Delivery, Job, Event] | None:
    """The member's latest confirmation request whose answers are still open."""
    rows = await session.execute(
        select(Delivery, Job, Event)
        .join(Job, Job.id == Delivery.job_id)
        .join(Event, Event.id == Job.event_id)
        .where(
            Delivery.member_id == member.id,
            Delivery.status == DeliveryStatus.sent.value,
            Job.kind == JobKind.confirmation_request.value,
            Delivery.created_at > now - RECENT,
            Event.deleted_at.is_(None),
            Event.status == EventStatus.scheduled.value,
        )
        .order_by(Delivery.created_at.desc())
        .limit(5)
    )
    for delivery, job, event in rows:
        closes = job.occurrence_start
        if event.confirm_before_minutes is not None:
            closes -= timedelta(minutes=event.confirm_before_minutes)
        if now <= closes:
            return delivery, job, event
    return None


async def answer_in_words(
    session: AsyncSession, member: Member, text: str, now: datetime
) -> WordsAnswer | None:
    """Record ``text`` as the answer to the member's open confirmation request, if it reads as
    one. None: no open request, or the words are about something else. The caller commits."""
    found = await _open_request(session, member, now)
    if found is None:
        return None
    delivery, job, event = found
    reading = read_answer(text)
    if reading.intent is Intent.unrelated:
        return None
    answer = _ANSWERS.get(reading.intent)
    if answer is not None:
        await save_answer(session, event, member.id, job.occurrence, answer, now)
    member.last_activity_at = now
    return WordsAnswer(reading, event.title, delivery.id, answer)
