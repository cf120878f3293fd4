"""Answers pressed on a message's buttons: checked against the delivery they were sent with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.answer_buttons import (
    BUTTON_VERSION,
    LINK_VERSION,
    AnswerButton,
    decode_answer,
)
from core.delivery.models import Delivery, Job
from core.events.confirmations import save_answer
from core.events.models import Answer, Event, EventStatus
from core.teams.accounts import Person
from core.teams.models import Member


class ButtonVerdict(StrEnum):
    recorded = "recorded"
    forged = "forged"  # bad signature or unknown delivery
    not_yours = "not_yours"  # pressed by someone other than the member it was sent to
    closed = "closed"  # after the deadline, or the event is cancelled


@dataclass(frozen=True)
class ButtonResult:
    verdict: ButtonVerdict
    answer: Answer | None = None
    event_title: str = ""
    locale: str = "en"


async def record_button_answer(
    session: AsyncSession, key: bytes, data: str, presser: Person, now: datetime
) -> ButtonResult:
    """Record the answer a member pressed in a messenger; changeable until the deadline. The caller
    commits.

    The data names a delivery (so a member, an event and an occurrence) and is signed; a forwarded
    message pressed by someone else is refused, and nothing is written.
    """
    return await _record(session, key, data, BUTTON_VERSION, now, presser)


async def record_link_answer(
    session: AsyncSession, key: bytes, data: str, now: datetime
) -> ButtonResult:
    """Record an answer given through an emailed link. The signed link went to the member's own
    address and names one delivery; that is the proof of who answers. A button's data is not a
    link: it is refused here, as a link is refused by the bot. The caller commits."""
    return await _record(session, key, data, LINK_VERSION, now, None)


async def describe_answer_link(session: AsyncSession, key: bytes, data: str) -> ButtonResult:
    """What a link would record, without recording it (for the confirmation page)."""
    button = _event_answer(decode_answer(key, data, LINK_VERSION))
    delivery = await session.get(Delivery, button.delivery_id) if button else None
    if button is None or delivery is None:
        return ButtonResult(ButtonVerdict.forged)
    member = await session.get_one(Member, delivery.member_id)
    job = await session.get_one(Job, delivery.job_id)
    event = await session.get_one(Event, job.event_id)
    return ButtonResult(ButtonVerdict.recorded, Answer(button.answer), event.title, member.locale)


def _event_answer(button: AnswerButton | None) -> AnswerButton | None:
    """Only going / not going / maybe answer an event (a journey's choices are not answers)."""
    if button is None or button.answer not in Answer.__members__.values():
        return None
    return button


async def _record(
    session: AsyncSession,
    key: bytes,
    data: str,
    version: str,
    now: datetime,
    presser: Person | None,
) -> ButtonResult:
    button = _event_answer(decode_answer(key, data, version))
    if button is None:
        return ButtonResult(ButtonVerdict.forged)
    delivery = await session.get(Delivery, button.delivery_id)
    if delivery is None:
        return ButtonResult(ButtonVerdict.forged)
    member = await session.get_one(Member, delivery.member_id)
    if presser is not None and member.account_id(presser.messenger) != presser.external_id:
        return ButtonResult(ButtonVerdict.not_yours, locale=member.locale)
    job = await session.get_one(Job, delivery.job_id)
    event = await session.get_one(Event, job.event_id)
    closed = ButtonResult(ButtonVerdict.closed, event_title=event.title, locale=member.locale)
    if event.deleted_at is not None or event.status != EventStatus.scheduled.value:
        return closed
    if event.confirm_before_minutes is not None:
        deadline = job.occurrence_start - timedelta(minutes=event.confirm_before_minutes)
        if now > deadline:
            return closed
    await save_answer(session, event, member.id, job.occurrence, Answer(button.answer), now)
    member.last_activity_at = now
    return ButtonResult(
        ButtonVerdict.recorded, Answer(button.answer), event_title=event.title, locale=member.locale
    )
