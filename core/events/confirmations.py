"""Confirmations (RSVP): a member's going / not going / maybe, per event or per occurrence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, audience_query
from core.clock import utcnow
from core.delivery.models import Delivery, DeliveryStatus, Job
from core.errors import Invalid, NotFound
from core.events.lookup import as_utc, get_live_event
from core.events.models import Answer, Confirmation, Event
from core.events.occurrences import check_recurrence_id
from core.events.schemas import (
    ConfirmationBoard,
    ConfirmationCounts,
    ConfirmationIn,
    ConfirmationOut,
)
from core.scoping import get_scoped
from core.teams.models import Member
from core.teams.permissions import Action, Actor, system_actor
from core.teams.schemas import Ref

_KEY_FORMAT = "%Y%m%dT%H%M%SZ"


def occurrence_key(recurrence_id: datetime | None) -> str:
    """How an answer names its occurrence: "" for a one-off event, else the UTC RECURRENCE-ID."""
    return "" if recurrence_id is None else recurrence_id.strftime(_KEY_FORMAT)


def recurrence_id_of(key: str) -> datetime | None:
    """The inverse of occurrence_key; Invalid naming ``occurrence`` for anything else."""
    if not key:
        return None
    try:
        return datetime.strptime(key, _KEY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise Invalid("occurrence", "an occurrence looks like 20261207T070000Z") from None


def _occurrence(event: Event, given: datetime | None) -> datetime | None:
    if event.rrule is None:
        if given is not None:
            raise Invalid("occurrence", "a one-off event has no occurrences; leave it out")
        return None
    if given is None:
        raise Invalid("occurrence", "a recurring event needs the occurrence's recurrence_id")
    return check_recurrence_id(event, as_utc(given, ZoneInfo(event.timezone)), "occurrence")


async def record_confirmation(
    session: AsyncSession,
    actor: Actor,
    event_id: uuid.UUID,
    member_id: uuid.UUID,
    data: ConfirmationIn,
) -> ConfirmationOut:
    """Record (or change) a member's answer, until the event's answer deadline."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    member = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    if event.confirm_before_minutes is None:
        raise Invalid("answer", "this event does not ask for confirmation")
    recurrence_id = _occurrence(event, data.occurrence)
    if not await in_audience(session, event, member.id):
        raise Invalid("member_id", "this member is not in the event's audience")
    now = utcnow()
    start = recurrence_id or event.starts_at
    deadline = start - timedelta(minutes=event.confirm_before_minutes)
    if now > deadline:
        raise Invalid("answer", f"answers closed at {deadline.isoformat()}")
    key = occurrence_key(recurrence_id)
    await save_answer(session, event, member.id, key, data.answer, now)
    return ConfirmationOut(
        event_id=event.id,
        member_id=member.id,
        occurrence=recurrence_id,
        answer=data.answer,
        answered_at=now,
    )


async def in_audience(session: AsyncSession, event: Event, member_id: uuid.UUID) -> bool:
    """Whether the event's audience, resolved now, includes this member."""
    rule = AudienceRule.model_validate(event.audience)
    reached = await session.scalar(
        audience_query(event.workspace_id, rule)
        .where(Member.id == member_id)
        .with_only_columns(Member.id)
    )
    return reached is not None


async def confirmation_board(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, occurrence: datetime | None
) -> ConfirmationBoard:
    """Going, not going, maybe and silent among the event's current audience."""
    actor.require(Action.read)
    event = await get_live_event(session, actor, event_id)
    return await tally(session, event, _occurrence(event, occurrence))


async def tally(
    session: AsyncSession, event: Event, recurrence_id: datetime | None
) -> ConfirmationBoard:
    """The board of one occurrence (or of a one-off event), audience resolved now."""
    rule = AudienceRule.model_validate(event.audience)
    audience = (
        await session.execute(
            audience_query(event.workspace_id, rule).with_only_columns(Member.id, Member.name)
        )
    ).all()
    answers = dict(
        (
            await session.execute(
                select(Confirmation.member_id, Confirmation.answer).where(
                    Confirmation.event_id == event.id,
                    Confirmation.occurrence == occurrence_key(recurrence_id),
                )
            )
        ).all()
    )
    # Why some of the silent may not have heard: the latest word from the messenger about this
    # occurrence's messages to them.
    unheard = dict(
        (
            await session.execute(
                select(Delivery.member_id, Delivery.status)
                .join(Job, Job.id == Delivery.job_id)
                .where(
                    Job.event_id == event.id,
                    Job.occurrence == occurrence_key(recurrence_id),
                    Delivery.status.in_(
                        [DeliveryStatus.not_joined.value, DeliveryStatus.unknown.value]
                    ),
                )
                .order_by(Delivery.created_at)
            )
        ).all()
    )
    lists: dict[str, list[Ref]] = {key: [] for key in ("going", "not_going", "maybe", "silent")}
    for ident, name in audience:
        lists[answers.get(ident, "silent")].append(Ref(id=ident, name=name))
    return ConfirmationBoard(
        occurrence=recurrence_id,
        counts=ConfirmationCounts(**{k: len(v) for k, v in lists.items()}),
        going=lists["going"],
        not_going=lists["not_going"],
        maybe=lists["maybe"],
        silent=lists["silent"],
        not_joined=[r for r in lists["silent"] if unheard.get(r.id) == "not_joined"],
        unknown=[r for r in lists["silent"] if unheard.get(r.id) == "unknown"],
    )


async def save_answer(
    session: AsyncSession,
    event: Event,
    member_id: uuid.UUID,
    occurrence: str,
    answer: Answer,
    now: datetime,
) -> None:
    """Record or change one member's answer to one occurrence (the callers check the rules)."""
    await session.execute(
        insert(Confirmation)
        .values(
            event_id=event.id,
            member_id=member_id,
            occurrence=occurrence,
            workspace_id=event.workspace_id,
            answer=answer.value,
            answered_at=now,
        )
        .on_conflict_do_update(
            index_elements=[Confirmation.event_id, Confirmation.member_id, Confirmation.occurrence],
            set_={"answer": answer.value, "answered_at": now},
        )
    )


async def answer_as_member(
    session: AsyncSession,
    member: Member,
    event_id: uuid.UUID,
    occurrence: str,
    answer: Answer,
    now: datetime,
) -> Event:
    """A member answers for themselves (Mini App): only events of their own workspace that
    reach them, and only until the deadline."""
    event = await get_live_event(session, system_actor(member.workspace_id), event_id)
    if event.confirm_before_minutes is None:
        raise Invalid("answer", "this event does not ask for confirmation")
    recurrence_id = recurrence_id_of(occurrence)
    if recurrence_id is not None:
        check_recurrence_id(event, recurrence_id)
    if not await in_audience(session, event, member.id):
        raise NotFound("event", event_id)  # not for them: as if it did not exist
    start = recurrence_id or event.starts_at
    deadline = start - timedelta(minutes=event.confirm_before_minutes)
    if now > deadline:
        raise Invalid("answer", f"answers closed at {deadline.isoformat()}")
    await save_answer(session, event, member.id, occurrence_key(recurrence_id), answer, now)
    return event
