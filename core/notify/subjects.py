"""The subjects the engine sends about (core.delivery.subjects): one occurrence of an event
(reminder, confirmation request, nudge, summary to the leads) and a lead's broadcast.

Each is loaded for one job and answers the engine's questions: whom the job reaches now, whether
it still stands, until when a message about it is of use, and what each member reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, audience_query
from core.delivery.channels import OutboundMessage
from core.delivery.models import Job
from core.delivery.subjects import Outlets, register
from core.events.confirmations import recurrence_id_of, tally
from core.events.models import Answer, Confirmation, Event, EventStatus
from core.events.schemas import ConfirmationBoard
from core.notify.chat_posts import announce
from core.notify.messages import render, render_broadcast
from core.notify.models import Broadcast, BroadcastStatus, EventMute, JobKind
from core.teams.models import Member, MemberStatus
from core.teams.roles import lead_ids
from core.timezones import LATEST_ZONE

# A broadcast held back by quiet hours still goes out within this time of its send_at.
BROADCAST_USEFUL_FOR = timedelta(hours=24)
_ACTIVE = Member.status == MemberStatus.active.value


@dataclass(frozen=True)
class EventSubject:
    """A job about one occurrence of an event. The kinds differ in whom they reach."""

    job: Job
    event: Event
    audience: AudienceRule

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.event.workspace_id

    @property
    def gone(self) -> str | None:
        if self.event.deleted_at is not None or self.event.status != EventStatus.scheduled:
            return "the event was cancelled"
        return None

    def _muted(self) -> Select[uuid.UUID]:
        return select(EventMute.member_id).where(EventMute.event_id == self.event.id)

    def _answered(self) -> Select[uuid.UUID]:
        return select(Confirmation.member_id).where(
            Confirmation.event_id == self.event.id, Confirmation.occurrence == self.job.occurrence
        )

    def recipients(self) -> Select[Member]:
        return audience_query(self.event.workspace_id, self.audience).where(
            _ACTIVE, Member.id.not_in(self._muted())
        )

    def _deadline(self) -> datetime | None:
        """When answers close for this occurrence, if the event asks for them."""
        minutes = self.event.confirm_before_minutes
        if minutes is None:
            return None
        return self.job.occurrence_start - timedelta(minutes=minutes)

    def useful_until(self) -> datetime:
        return self.job.occurrence_start

    def local_due(self, member: Member) -> datetime | None:
        return None

    async def board(self, session: AsyncSession) -> ConfirmationBoard | None:
        return None

    def message(self, member: Member, board: object | None) -> OutboundMessage:
        assert board is None or isinstance(board, ConfirmationBoard)
        kind = JobKind(self.job.kind)
        return render(kind, self.event, member, self.job.occurrence_start, self._deadline(), board)

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        return 0


class ReminderSubject(EventSubject):
    def recipients(self) -> Select[Member]:
        # Unsubscribed members get only what they asked for: reminders of what they said yes to.
        going = self._answered().where(Confirmation.answer == Answer.going.value)
        wanted: ColumnElement[bool] = or_(
            _ACTIVE,
            and_(Member.status == MemberStatus.unsubscribed.value, Member.id.in_(going)),
        )
        return audience_query(self.event.workspace_id, self.audience).where(
            wanted, Member.id.not_in(self._muted())
        )


class ConfirmationRequestSubject(EventSubject):
    def useful_until(self) -> datetime:
        return self._deadline() or self.job.occurrence_start

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        # The request is posted into the group chats linked to the audience's groups too.
        channels = [c for c in outlets.channels if c.posts_in_group_chats]
        if not channels:
            return 0
        return await announce(
            session,
            self.job,
            self.event,
            self.audience,
            channels,
            outlets.secret,
            outlets.now,
            outlets.limiter,
        )


class NudgeSubject(ConfirmationRequestSubject):
    def recipients(self) -> Select[Member]:
        return super().recipients().where(Member.id.not_in(self._answered()))

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        return 0


class DeadlineSummarySubject(EventSubject):
    def recipients(self) -> Select[Member]:
        # The people who run the workspace hear who is coming.
        return (
            select(Member)
            .where(
                Member.id.in_(lead_ids(self.event.workspace_id)),
                _ACTIVE,
                Member.id.not_in(self._muted()),
            )
            .order_by(Member.name)
        )

    async def board(self, session: AsyncSession) -> ConfirmationBoard | None:
        return await tally(session, self.event, recurrence_id_of(self.job.occurrence))


@dataclass(frozen=True)
class BroadcastSubject:
    job: Job
    broadcast: Broadcast
    audience: AudienceRule

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.broadcast.workspace_id

    @property
    def gone(self) -> str | None:
        if self.broadcast.status == BroadcastStatus.cancelled:
            return "the broadcast was cancelled"
        return None

    def recipients(self) -> Select[Member]:
        return audience_query(self.broadcast.workspace_id, self.audience).where(_ACTIVE)

    def useful_until(self) -> datetime:
        if self.broadcast.local_time is not None:
            # The last zone (UTC-12) reaches the local time last.
            latest = self.broadcast.local_time.replace(tzinfo=UTC) + LATEST_ZONE
            return latest + BROADCAST_USEFUL_FOR
        return self.job.occurrence_start + BROADCAST_USEFUL_FOR

    def local_due(self, member: Member) -> datetime | None:
        """For a broadcast "at 09:00 local for everyone": that moment in the member's zone."""
        if self.broadcast.local_time is None:
            return None
        return self.broadcast.local_time.replace(tzinfo=ZoneInfo(member.timezone))

    async def board(self, session: AsyncSession) -> None:
        return None

    def message(self, member: Member, board: object | None) -> OutboundMessage:
        b = self.broadcast
        return render_broadcast(b.text, member, b.variants, b.buttons)

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        return 0


_EVENT_KINDS: dict[JobKind, type[EventSubject]] = {
    JobKind.reminder: ReminderSubject,
    JobKind.confirmation_request: ConfirmationRequestSubject,
    JobKind.nudge: NudgeSubject,
    JobKind.deadline_summary: DeadlineSummarySubject,
}


async def load_event_subject(session: AsyncSession, job: Job) -> EventSubject:
    assert job.event_id is not None
    event = await session.get_one(Event, job.event_id)
    audience = AudienceRule.model_validate(event.audience)
    return _EVENT_KINDS[JobKind(job.kind)](job, event, audience)


async def load_broadcast_subject(session: AsyncSession, job: Job) -> BroadcastSubject:
    assert job.broadcast_id is not None
    broadcast = await session.get_one(Broadcast, job.broadcast_id)
    return BroadcastSubject(job, broadcast, AudienceRule.model_validate(broadcast.audience))


def install() -> None:
    """Register these subjects with the engine (idempotent)."""
    for kind in _EVENT_KINDS:
        register(kind.value, load_event_subject)
    register(JobKind.broadcast.value, load_broadcast_subject)
