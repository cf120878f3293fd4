"""What a job is about: one occurrence of an event, or a lead's broadcast. Dispatch asks the
subject whether it still stands, until when a message about it is of use, and what to say."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.events.confirmations import recurrence_id_of, tally
from core.events.models import Event, EventStatus
from core.events.schemas import ConfirmationBoard
from core.notify.audience import AudienceRule
from core.notify.messages import OutboundMessage, render, render_broadcast
from core.notify.models import Broadcast, BroadcastStatus, Job, JobKind
from core.teams.models import Member
from core.timezones import LATEST_ZONE

# A broadcast held back by quiet hours still goes out within this time of its send_at.
BROADCAST_USEFUL_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Subject:
    workspace_id: uuid.UUID
    audience: AudienceRule
    event: Event | None = None
    broadcast: Broadcast | None = None

    @property
    def gone(self) -> str | None:
        """Why nothing more may go out about it (cancelled, deleted), or None."""
        if self.event is not None:
            if self.event.deleted_at is not None or self.event.status != EventStatus.scheduled:
                return "the event was cancelled"
        elif self.broadcast is not None and self.broadcast.status == BroadcastStatus.cancelled:
            return "the broadcast was cancelled"
        return None

    def useful_until(self, job: Job) -> datetime:
        """After this a message is pointless: the event's start or answer deadline; a day after
        a broadcast's time."""
        if self.event is None:
            if self.broadcast is not None and self.broadcast.local_time is not None:
                # The last zone (UTC-12) reaches the local time last.
                latest = self.broadcast.local_time.replace(tzinfo=UTC) + LATEST_ZONE
                return latest + BROADCAST_USEFUL_FOR
            return job.occurrence_start + BROADCAST_USEFUL_FOR
        minutes = self.event.confirm_before_minutes
        if minutes is not None and job.kind in (
            JobKind.confirmation_request.value,
            JobKind.nudge.value,
        ):
            return job.occurrence_start - timedelta(minutes=minutes)
        return job.occurrence_start

    def local_due(self, member: Member) -> datetime | None:
        """For a broadcast "at 09:00 local for everyone": that moment in the member's zone."""
        if self.broadcast is None or self.broadcast.local_time is None:
            return None
        return self.broadcast.local_time.replace(tzinfo=ZoneInfo(member.timezone))

    async def board(self, session: AsyncSession, job: Job) -> ConfirmationBoard | None:
        if self.event is None or job.kind != JobKind.deadline_summary.value:
            return None
        return await tally(session, self.event, recurrence_id_of(job.occurrence))

    def message(self, job: Job, member: Member, board: ConfirmationBoard | None) -> OutboundMessage:
        if self.broadcast is not None:
            b = self.broadcast
            return render_broadcast(b.text, member, b.variants, b.buttons)
        assert self.event is not None
        minutes = self.event.confirm_before_minutes
        deadline = (
            job.occurrence_start - timedelta(minutes=minutes) if minutes is not None else None
        )
        kind = JobKind(job.kind)
        return render(kind, self.event, member, job.occurrence_start, deadline, board)


async def subject_of(session: AsyncSession, job: Job) -> Subject:
    if job.broadcast_id is not None:
        broadcast = await session.get_one(Broadcast, job.broadcast_id)
        rule = AudienceRule.model_validate(broadcast.audience)
        return Subject(broadcast.workspace_id, rule, broadcast=broadcast)
    event = await session.get_one(Event, job.event_id)
    return Subject(event.workspace_id, AudienceRule.model_validate(event.audience), event=event)
