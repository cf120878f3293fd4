"""Events: creating, changing, listing and expanding them. Every rule about an event's shape lives here."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import String, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, validate_audience
from core.audit import record_by, short
from core.clock import utcnow
from core.errors import FieldError, Invalid
from core.events.changes import event_changed
from core.events.lookup import as_utc, get_live_event, touch
from core.events.models import Event, EventStatus
from core.events.recurrence import parse_rrule, require_an_occurrence
from core.events.schemas import (
    MAX_OFFSET_MINUTES,
    EventCreate,
    EventFilter,
    EventOut,
    EventUpdate,
)
from core.filters import contains
from core.paging import Page, PagedQuery, page_and_total, paged
from core.teams.models import Workspace
from core.teams.permissions import Action, Actor

DEFAULT_DURATION = timedelta(hours=1)
_NOT_NULL = frozenset(
    {
        "title",
        "description",
        "location",
        "timezone",
        "all_day",
        "exdates",
        "audience",
        "reminder_offsets",
        "confirmation_required",
        "status",
        "show_attendees",
    }
)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _apply_times(event: Event, data: EventCreate, zone: ZoneInfo) -> None:
    if data.all_day:
        for field in ("starts_at", "ends_at"):
            if getattr(data, field) is not None:
                raise Invalid(
                    field, "leave it out for an all-day event; use start_date and end_date"
                )
        if data.start_date is None:
            raise Invalid("start_date", "an all-day event needs start_date (YYYY-MM-DD)")
        end = data.end_date or data.start_date
        if end < data.start_date:
            raise Invalid("end_date", "must not be before start_date")
        event.start_date, event.end_date = data.start_date, end
        event.starts_local = None
        event.starts_at = _midnight(data.start_date, zone)
        event.ends_at = _midnight(end + timedelta(days=1), zone)
        return
    for field in ("start_date", "end_date"):
        if getattr(data, field) is not None:
            raise Invalid(field, "only for all-day events; set all_day to true or use starts_at")
    if data.starts_at is None:
        raise Invalid("starts_at", "a timed event needs starts_at (e.g. 2026-12-01T10:00)")
    starts = as_utc(data.starts_at, zone)
    ends = as_utc(data.ends_at, zone) if data.ends_at is not None else starts + DEFAULT_DURATION
    if ends <= starts:
        raise Invalid("ends_at", "must be after starts_at")
    event.start_date = event.end_date = None
    event.starts_at, event.ends_at = starts, ends
    # As given: a naive time is the wall-clock start even where the clock skips it (a DST gap).
    event.starts_local = (
        data.starts_at if data.starts_at.tzinfo is None else starts.astimezone(zone)
    ).replace(tzinfo=None, fold=0)


async def _apply_recurrence(event: Event, data: EventCreate, zone: ZoneInfo) -> None:
    if data.rrule is None or not data.rrule.strip():
        if data.exdates:
            raise Invalid("exdates", "exceptions only make sense for a recurring event (set rrule)")
        event.rrule, event.exdates = None, []
        return
    first = event.starts_local or event.starts_at
    await require_an_occurrence(parse_rrule(data.rrule, first, event.timezone))
    text = data.rrule.strip()
    event.rrule = text[6:] if text.upper().startswith("RRULE:") else text
    event.exdates = sorted({as_utc(d, zone) for d in data.exdates})


def _apply_confirmation(event: Event, data: EventCreate, zone: ZoneInfo) -> None:
    if not data.confirmation_required:
        if data.confirm_by is not None or data.confirm_before_minutes is not None:
            raise Invalid(
                "confirmation_required", "set it to true to ask members to confirm by a deadline"
            )
        event.confirm_before_minutes = None
        return
    if data.confirm_by is not None and data.confirm_before_minutes is not None:
        raise Invalid("confirm_by", "give confirm_by or confirm_before_minutes, not both")
    minutes = data.confirm_before_minutes or 0
    if data.confirm_by is not None:
        lead = event.starts_at - as_utc(data.confirm_by, zone)
        if lead < timedelta(0):
            raise Invalid("confirm_by", "must not be after the event starts")
        minutes = int(lead.total_seconds() // 60)
        if minutes > MAX_OFFSET_MINUTES:
            raise Invalid("confirm_by", "must be within 60 days before the event starts")
    event.confirm_before_minutes = minutes


async def _apply(session: AsyncSession, actor: Actor, event: Event, data: EventCreate) -> None:
    """Check ``data`` as a whole and write it onto ``event``; raises Invalid naming the field."""
    timezone, offsets = data.timezone, data.reminder_offsets
    if timezone is None or offsets is None:
        workspace = await session.get_one(Workspace, actor.workspace_id)
        timezone = timezone or workspace.timezone
        offsets = list(workspace.default_reminder_offsets) if offsets is None else offsets
    zone = ZoneInfo(timezone)
    await validate_audience(session, actor.workspace_id, data.audience)
    event.title, event.description, event.location = data.title, data.description, data.location
    event.timezone, event.all_day = timezone, data.all_day
    _apply_times(event, data, zone)
    await _apply_recurrence(event, data, zone)
    _apply_confirmation(event, data, zone)
    event.audience = data.audience.model_dump(mode="json")
    event.reminder_offsets = sorted(set(offsets), reverse=True)
    event.show_attendees = data.show_attendees


class _EventRow(NamedTuple):
    """What an event's view is made of: lists read just these columns, into named tuples (a
    SQLAlchemy Row looks each name up; a page of 50 events reads a thousand fields)."""

    id: uuid.UUID
    title: str
    description: str
    location: str
    timezone: str
    all_day: bool
    starts_at: datetime
    ends_at: datetime
    start_date: date | None
    end_date: date | None
    rrule: str | None
    exdates: list[datetime]
    audience: dict[str, Any]
    reminder_offsets: list[int]
    confirm_before_minutes: int | None
    show_attendees: bool
    status: EventStatus
    created_by: str
    created_at: datetime
    updated_at: datetime


# The columns a view reads, selected once (each read adds its conditions to a copy): coercing
# them took a tenth of a millisecond of every list.
_VIEW_ROWS = select(*(getattr(Event, name) for name in _EventRow._fields))


def _view(event: Event | _EventRow) -> EventOut:
    zone = ZoneInfo(event.timezone)
    minutes = event.confirm_before_minutes
    return EventOut(
        id=event.id,
        title=event.title,
        description=event.description,
        location=event.location,
        timezone=event.timezone,
        all_day=event.all_day,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        local_start=event.starts_at.astimezone(zone),
        local_end=event.ends_at.astimezone(zone),
        start_date=event.start_date,
        end_date=event.end_date,
        rrule=event.rrule,
        exdates=list(event.exdates),
        audience=AudienceRule.model_validate(event.audience),
        reminder_offsets=list(event.reminder_offsets),
        confirmation_required=minutes is not None,
        confirm_before_minutes=minutes,
        confirm_by=None if minutes is None else event.starts_at - timedelta(minutes=minutes),
        show_attendees=event.show_attendees,
        status=event.status,
        created_by=event.created_by,
        created_at=event.created_at,
        updated_at=event.updated_at,
    )


async def create_event(
    session: AsyncSession, actor: Actor, data: EventCreate, *, ics_uid: str | None = None
) -> EventOut:
    """Create an event after checking its times, recurrence, audience and deadlines."""
    actor.require(Action.manage_events)
    event = Event(workspace_id=actor.workspace_id, created_by=actor.label, ics_uid=ics_uid)
    await _apply(session, actor, event, data)
    session.add(event)
    await session.flush()
    await event_changed(session, event, utcnow())
    record_by(session, actor, "event.created", event, f"event {short(event.title)!r}")
    return _view(event)


async def get_event(session: AsyncSession, actor: Actor, event_id: uuid.UUID) -> EventOut:
    actor.require(Action.read)
    return _view(await get_live_event(session, actor, event_id))


def _as_input(event: Event) -> dict[str, Any]:
    return {
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "timezone": event.timezone,
        "all_day": event.all_day,
        "starts_at": None if event.all_day else event.starts_at,
        "ends_at": None if event.all_day else event.ends_at,
        "start_date": event.start_date,
        "end_date": event.end_date,
        "rrule": event.rrule,
        "exdates": list(event.exdates),
        "audience": event.audience,
        "reminder_offsets": list(event.reminder_offsets),
        "confirmation_required": event.confirm_before_minutes is not None,
        "confirm_before_minutes": event.confirm_before_minutes,
        "show_attendees": event.show_attendees,
    }


def _merge(event: Event, patch: EventUpdate) -> EventCreate:
    given = patch.model_dump(exclude_unset=True)
    nulls = [
        FieldError(k, "cannot be null") for k, v in given.items() if v is None and k in _NOT_NULL
    ]
    if nulls:
        raise Invalid(nulls[0].field, nulls[0].message, *nulls[1:])
    merged = _as_input(event)
    if "all_day" in given and given["all_day"] != event.all_day:
        # Switching between timed and all-day: the old times are of the other kind.
        for key in ("starts_at", "ends_at", "start_date", "end_date"):
            merged[key] = None
    if "confirm_by" in given:
        merged["confirm_before_minutes"] = None
    if given.get("confirmation_required") is False:
        merged["confirm_before_minutes"] = None
    if "rrule" in given and given["rrule"] is None and "exdates" not in given:
        merged["exdates"] = []
    given.pop("status", None)
    merged.update(given)
    try:
        return EventCreate.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(".".join(str(p) for p in first["loc"]), first["msg"]) from None


async def update_event(
    session: AsyncSession, actor: Actor, event_id: uuid.UUID, patch: EventUpdate
) -> EventOut:
    """Change an event; the result is checked as a whole, and nothing is written if it is invalid."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    data = _merge(event, patch)
    await _apply(session, actor, event, data)
    if patch.status is not None:
        event.status = patch.status
    if session.is_modified(event):
        touch(event)
        await session.flush()
        await event_changed(session, event, utcnow())
        changed = ", ".join(sorted(patch.model_dump(exclude_unset=True)))
        record_by(
            session, actor, "event.changed", event, f"event {short(event.title)!r}: {changed}"
        )
    return _view(event)


async def delete_event(session: AsyncSession, actor: Actor, event_id: uuid.UUID) -> None:
    """Delete an event. It is gone from the API at once; calendar feeds keep showing it as
    cancelled for a while, so subscribers' calendars drop it too."""
    actor.require(Action.manage_events)
    event = await get_live_event(session, actor, event_id)
    event.deleted_at = utcnow()
    event.status = EventStatus.cancelled
    touch(event)
    await session.flush()
    await event_changed(session, event, utcnow())
    record_by(session, actor, "event.deleted", event, f"event {short(event.title)!r}")


@lru_cache(maxsize=16)
def _listed(starts_from: bool, starts_before: bool, status: bool, q: bool) -> PagedQuery:
    """The events list's query for the filters given (their values bound by name), built once
    per combination."""
    where = [Event.workspace_id == bindparam("workspace_id"), Event.deleted_at.is_(None)]
    if starts_from:
        where.append(or_(Event.starts_at >= bindparam("starts_from"), Event.rrule.is_not(None)))
    if starts_before:
        where.append(Event.starts_at < bindparam("starts_before"))
    if status:
        where.append(Event.status == bindparam("status"))
    if q:
        pattern = bindparam("q", type_=String())
        where.append(or_(Event.title.ilike(pattern), Event.description.ilike(pattern)))
    return paged(
        _VIEW_ROWS.where(*where).order_by(Event.starts_at, Event.id),
        select(func.count()).select_from(Event).where(*where),
    )


async def list_events(session: AsyncSession, actor: Actor, flt: EventFilter) -> Page[EventOut]:
    """Events by start time. A recurring series is listed once, if it has begun before ``starts_before``."""
    actor.require(Action.read)
    values: dict[str, Any] = {"workspace_id": actor.workspace_id}
    if flt.starts_from is not None:
        values["starts_from"] = as_utc(flt.starts_from, ZoneInfo("UTC"))
    if flt.starts_before is not None:
        values["starts_before"] = as_utc(flt.starts_before, ZoneInfo("UTC"))
    if flt.status is not None:
        values["status"] = flt.status.value
    if flt.q:
        values["q"] = contains(flt.q)
    query = _listed(*(name in values for name in ("starts_from", "starts_before", "status", "q")))
    rows, total = await page_and_total(session, _EventRow._make, query, flt, values)
    return Page(items=[_view(e) for e in rows], total=total, limit=flt.limit, offset=flt.offset)
