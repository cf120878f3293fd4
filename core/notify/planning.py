"""Planning jobs for an event: which reminders, confirmation requests, nudges and summaries are due.

Called in the same transaction as every change to an event, so the jobs always match the event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.delivery.models import Job, JobStatus
from core.errors import Conflict, Invalid
from core.events.confirmations import occurrence_key
from core.events.lookup import get_live_event
from core.events.models import Event, EventOverride, EventStatus
from core.events.occurrences import check_recurrence_id, expand, overrides_of
from core.notify.models import JobKind
from core.teams.permissions import Action, Actor

HORIZON = timedelta(days=30)
# A confirmation request goes out with the earliest reminder before the deadline, or, with no
# such reminder, this long before the deadline (never before the event is created).
REQUEST_LEAD = timedelta(hours=24)
MIN_NUDGE_GAP = timedelta(minutes=10)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PlannedJob:
    kind: JobKind
    occurrence: str
    occurrence_start: datetime
    offset_minutes: int | None
    due_at: datetime

    @property
    def key(self) -> str:
        offset = "" if self.offset_minutes is None else str(self.offset_minutes)
        return (
            f"{self.kind.value}:{self.occurrence}:{self.occurrence_start:%Y%m%dT%H%M%SZ}:{offset}"
        )


def _for_occurrence(
    event: Event, recurrence_id: datetime | None, start: datetime, now: datetime
) -> list[PlannedJob]:
    occurrence = occurrence_key(recurrence_id)
    jobs = [
        PlannedJob(JobKind.reminder, occurrence, start, m, start - timedelta(minutes=m))
        for m in event.reminder_offsets
        if start - timedelta(minutes=m) >= now
    ]
    if event.confirm_before_minutes is None:
        return jobs
    deadline = start - timedelta(minutes=event.confirm_before_minutes)
    if deadline <= now:
        return jobs
    before_deadline = [j.due_at for j in jobs if j.due_at < deadline]
    request = max(now, min(before_deadline) if before_deadline else deadline - REQUEST_LEAD)
    jobs.append(PlannedJob(JobKind.confirmation_request, occurrence, start, None, request))
    nudge = request + (deadline - request) / 2
    if nudge - request >= MIN_NUDGE_GAP:
        jobs.append(PlannedJob(JobKind.nudge, occurrence, start, None, nudge))
    jobs.append(PlannedJob(JobKind.deadline_summary, occurrence, start, None, deadline))
    return jobs


def planned_jobs(
    event: Event, overrides: list[EventOverride], now: datetime, until: datetime
) -> list[PlannedJob]:
    """Every job the event needs for occurrences starting in [now, until)."""
    if event.status != EventStatus.scheduled.value or event.deleted_at is not None:
        return []
    out: list[PlannedJob] = []
    for occurrence in expand(event, overrides, now, until):
        out += _for_occurrence(event, occurrence.recurrence_id, occurrence.starts_at, now)
    return out


async def plan_event_jobs(session: AsyncSession, event: Event, now: datetime) -> None:
    """Make the event's pending jobs exactly what it needs now: add the missing, move the moved,
    cancel the unneeded. Jobs already done stay done; an event moved to a new time gets new jobs.
    """
    # A one-off event is planned whole however far ahead; a series only over the horizon,
    # which the scheduler keeps extending (extend_horizons).
    until = now + HORIZON if event.rrule is not None else _END_OF_TIME
    wanted = {
        f"{event.id}:{job.key}": job
        for job in planned_jobs(event, await overrides_of(session, [event.id]), now, until)
    }
    open_jobs = {
        job.idempotency_key: job
        for job in await session.scalars(
            select(Job).where(
                Job.event_id == event.id,
                Job.status.in_([JobStatus.pending.value, JobStatus.claimed.value]),
            )
        )
    }
    stale = [job.id for key, job in open_jobs.items() if key not in wanted]
    if stale:
        await session.execute(
            update(Job).where(Job.id.in_(stale)).values(status=JobStatus.cancelled.value)
        )
    for key, job in open_jobs.items():
        if key in wanted and job.due_at != wanted[key].due_at:
            job.due_at = wanted[key].due_at
    missing = [
        {
            "workspace_id": event.workspace_id,
            "event_id": event.id,
            "kind": planned.kind.value,
            "occurrence": planned.occurrence,
            "occurrence_start": planned.occurrence_start,
            "offset_minutes": planned.offset_minutes,
            "due_at": planned.due_at,
            "idempotency_key": key,
        }
        for key, planned in wanted.items()
        if key not in open_jobs
    ]
    if missing:
        # A job cancelled earlier (event cancelled, then restored) comes back; a done one stays done.
        statement = insert(Job).values(missing)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Job.idempotency_key],
                set_={
                    "status": JobStatus.pending.value,
                    "due_at": statement.excluded.due_at,
                    "lease_until": None,
                },
                where=Job.status == JobStatus.cancelled.value,
            )
        )
    event.jobs_planned_until = until if event.rrule is not None else None
    await session.flush()


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: JobKind
    occurrence_start: datetime
    offset_minutes: int | None
    due_at: datetime
    status: JobStatus
    attempts: int
    done_at: datetime | None


async def event_schedule(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, include_closed: bool
) -> list[JobOut]:
    """What vestnik will send for an event and when (and, if asked, what it did or dropped)."""
    actor.require(Action.read)
    event = await get_live_event(session, actor, event_id)
    query = select(Job).where(Job.event_id == event.id)
    if not include_closed:
        query = query.where(Job.status.in_([JobStatus.pending.value, JobStatus.claimed.value]))
    rows = await session.scalars(query.order_by(Job.due_at, Job.kind))
    return [JobOut.model_validate(r) for r in rows]


async def nudge_now(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, occurrence: datetime | None
) -> JobOut:
    """A lead's "nudge the silent now": a nudge job due at once for one occurrence. At most one
    a minute, so a double tap does not message people twice."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    if event.confirm_before_minutes is None:
        raise Invalid("event_id", "this event does not ask for confirmation")
    if (event.rrule is None) != (occurrence is None):
        raise Invalid("occurrence", "give it for a recurring event, and only then")
    recurrence_id = check_recurrence_id(event, occurrence, "occurrence") if occurrence else None
    start = recurrence_id or event.starts_at
    now = utcnow()
    if now >= start - timedelta(minutes=event.confirm_before_minutes):
        raise Invalid("occurrence", "answers are closed for this occurrence")
    key = occurrence_key(recurrence_id)
    job = Job(
        workspace_id=event.workspace_id,
        event_id=event.id,
        kind=JobKind.nudge.value,
        occurrence=key,
        occurrence_start=start,
        due_at=now,
        status=JobStatus.pending.value,
        idempotency_key=f"{event.id}:nudge-now:{key}:{now:%Y%m%dT%H%M}",
    )
    clash = await session.scalar(select(Job.id).where(Job.idempotency_key == job.idempotency_key))
    if clash is not None:
        raise Conflict("occurrence", "a nudge went out for it less than a minute ago")
    session.add(job)
    await session.flush()
    return JobOut.model_validate(job)


# Recurring events get their next jobs planned a day before their horizon runs out.
REPLAN_MARGIN = timedelta(days=1)


async def extend_horizons(session: AsyncSession, now: datetime, *, batch: int = 200) -> int:
    """Plan the next jobs of recurring events whose planned horizon is running out."""
    events = list(
        await session.scalars(
            select(Event)
            .where(
                Event.rrule.is_not(None),
                Event.deleted_at.is_(None),
                Event.status == EventStatus.scheduled.value,
                or_(
                    Event.jobs_planned_until.is_(None),
                    Event.jobs_planned_until < now + HORIZON - REPLAN_MARGIN,
                ),
            )
            .order_by(Event.jobs_planned_until.nulls_first())
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    for event in events:
        await plan_event_jobs(session, event, now)
    return len(events)
