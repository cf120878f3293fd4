"""Importing events from an .ics file: idempotent by UID, with a report of what happened to each."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from icalendar import Calendar, Component
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError, Invalid
from core.events.models import Event, EventStatus
from core.events.occurrence_changes import cancel_occurrence, move_occurrence
from core.events.schemas import MAX_OFFSET_MINUTES, EventCreate, EventUpdate, OccurrenceMove
from core.events.service import create_event, update_event
from core.teams.models import Workspace
from core.teams.permissions import Action, Actor

# Fields an import owns. Audience and confirmation settings belong to the lead and survive re-imports.
_IMPORTED = (
    "title",
    "description",
    "location",
    "timezone",
    "all_day",
    "starts_at",
    "ends_at",
    "start_date",
    "end_date",
    "rrule",
    "exdates",
)


class ImportedEvent(BaseModel):
    uid: str
    id: uuid.UUID
    title: str


class Refusal(BaseModel):
    uid: str | None
    summary: str | None
    reason: str


class ImportReport(BaseModel):
    created: list[ImportedEvent]
    updated: list[ImportedEvent]
    unchanged: list[ImportedEvent]
    refused: list[Refusal]


class _Refused(Exception):
    pass


def _zone_name(value: datetime, default: str) -> str:
    key = getattr(value.tzinfo, "key", None)
    return key if isinstance(key, str) and key not in ("UTC", "Etc/UTC") else default


def _event_data(vevent: Component, default_tz: str) -> dict[str, Any]:
    summary = str(vevent.get("SUMMARY", "")).strip()
    if not summary:
        raise _Refused("it has no SUMMARY (title)")
    if "DTSTART" not in vevent:
        raise _Refused("it has no DTSTART")
    start = vevent.decoded("DTSTART")
    end = vevent.decoded("DTEND") if "DTEND" in vevent else None
    if end is None and "DURATION" in vevent:
        end = start + vevent.decoded("DURATION")
    data: dict[str, Any] = {
        "title": summary,
        "description": str(vevent.get("DESCRIPTION", "")),
        "location": str(vevent.get("LOCATION", "")),
    }
    if isinstance(start, datetime):
        zone = _zone_name(start, default_tz) if start.tzinfo else default_tz
        data |= {"timezone": zone, "all_day": False, "starts_at": start, "ends_at": end}
    elif isinstance(start, date):
        last = (end - timedelta(days=1)) if isinstance(end, date) and end > start else start
        data |= {"timezone": default_tz, "all_day": True, "start_date": start, "end_date": last}
    if "RRULE" in vevent:
        rule = vevent["RRULE"].to_ical()
        data["rrule"] = rule.decode() if isinstance(rule, bytes) else str(rule)
    exdates: list[datetime] = []
    raw_exdates = vevent.get("EXDATE", [])
    for group in raw_exdates if isinstance(raw_exdates, list) else [raw_exdates]:
        for item in group.dts:
            value = item.dt
            exdates.append(
                value
                if isinstance(value, datetime)
                else datetime.combine(value, datetime.min.time())
            )
    if exdates:
        data["exdates"] = exdates
    offsets = sorted(
        {
            int(-trigger.total_seconds() // 60)
            for alarm in vevent.walk("VALARM")
            if isinstance(trigger := alarm.decoded("TRIGGER", None), timedelta)
            and timedelta(minutes=-MAX_OFFSET_MINUTES) <= trigger <= timedelta(0)
        },
        reverse=True,
    )
    if offsets:
        data["reminder_offsets"] = offsets[:10]
    return data


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if isinstance(exc, DomainError):
        return exc.detail
    return str(exc)


async def import_calendar(session: AsyncSession, actor: Actor, raw: bytes) -> ImportReport:
    """Create or update one event per VEVENT UID; moved or cancelled occurrences (RECURRENCE-ID)
    apply to their series. Each event is its own savepoint: one bad event refuses only itself.
    Imported events start with an empty audience; target them with PATCH afterwards.
    """
    actor.require(Action.manage_events)
    try:
        calendar = Calendar.from_ical(raw)
    except (ValueError, IndexError) as exc:
        raise Invalid("body", f"not an iCalendar file: {exc}") from None
    if calendar.name != "VCALENDAR":
        raise Invalid("body", "not an iCalendar file: expected BEGIN:VCALENDAR")
    default_tz = (await session.get_one(Workspace, actor.workspace_id)).timezone
    report = ImportReport(created=[], updated=[], unchanged=[], refused=[])
    vevents = list(calendar.walk("VEVENT"))
    masters = [v for v in vevents if "RECURRENCE-ID" not in v]
    imported: dict[str, uuid.UUID] = {}
    for vevent in masters:
        await _import_one(session, actor, vevent, default_tz, report, imported)
    for vevent in vevents:
        if "RECURRENCE-ID" in vevent:
            await _import_override(session, actor, vevent, report, imported)
    return report


async def _import_one(
    session: AsyncSession,
    actor: Actor,
    vevent: Component,
    default_tz: str,
    report: ImportReport,
    imported: dict[str, uuid.UUID],
) -> None:
    uid = str(vevent.get("UID", "")).strip() or None
    summary = str(vevent.get("SUMMARY", "")) or None
    try:
        if uid is None:
            raise _Refused("it has no UID, so a re-import could not find it")
        if len(uid) > 255:
            raise _Refused("its UID is longer than 255 characters")
        data = _event_data(vevent, default_tz)
        cancelled = str(vevent.get("STATUS", "")).upper() == "CANCELLED"
        async with session.begin_nested():
            existing = await session.scalar(
                select(Event).where(
                    Event.workspace_id == actor.workspace_id,
                    Event.ics_uid == uid,
                    Event.deleted_at.is_(None),
                )
            )
            if existing is None:
                created = await create_event(session, actor, EventCreate(**data), ics_uid=uid)
                if cancelled:
                    await update_event(
                        session, actor, created.id, EventUpdate(status=EventStatus.cancelled)
                    )
                report.created.append(ImportedEvent(uid=uid, id=created.id, title=created.title))
                imported[uid] = created.id
                return
            before = existing.sequence
            patch = {k: data.get(k) for k in _IMPORTED} | (
                {"reminder_offsets": data["reminder_offsets"]} if "reminder_offsets" in data else {}
            )
            patch["exdates"] = data.get("exdates", [])
            patch["status"] = EventStatus.cancelled if cancelled else EventStatus.scheduled
            updated = await update_event(session, actor, existing.id, EventUpdate(**patch))
            target = report.updated if existing.sequence != before else report.unchanged
            target.append(ImportedEvent(uid=uid, id=updated.id, title=updated.title))
            imported[uid] = updated.id
    except (_Refused, DomainError, ValidationError, ValueError, KeyError) as exc:
        report.refused.append(Refusal(uid=uid, summary=summary, reason=_reason(exc)))


async def _import_override(
    session: AsyncSession,
    actor: Actor,
    vevent: Component,
    report: ImportReport,
    imported: dict[str, uuid.UUID],
) -> None:
    uid = str(vevent.get("UID", "")).strip() or None
    summary = str(vevent.get("SUMMARY", "")) or None
    try:
        event_id = imported.get(uid or "")
        if event_id is None:
            raise _Refused("a changed occurrence (RECURRENCE-ID) whose series was not imported")
        rid = vevent.decoded("RECURRENCE-ID")
        if not isinstance(rid, datetime):
            raise _Refused("changed occurrences of all-day series are not supported yet")
        async with session.begin_nested():
            if str(vevent.get("STATUS", "")).upper() == "CANCELLED":
                await cancel_occurrence(session, actor, event_id, rid)
                return
            start = vevent.decoded("DTSTART")
            end = vevent.decoded("DTEND") if "DTEND" in vevent else None
            await move_occurrence(
                session, actor, event_id, rid, OccurrenceMove(starts_at=start, ends_at=end)
            )
    except (_Refused, DomainError, ValidationError, ValueError, KeyError) as exc:
        report.refused.append(Refusal(uid=uid, summary=summary, reason=_reason(exc)))
