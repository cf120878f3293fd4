"""The lead's event editor (title, time with zone, recurrence in plain words, reminders, the
confirmation deadline, the audience picker) and a member's view of one event."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.audience.rule import AudienceRule
from core.clock import utcnow
from core.errors import DomainError, Invalid, NotFound
from core.events.agenda import AgendaItem
from core.events.details import event_details
from core.events.repeat import (
    ORDINALS,
    WEEKDAYS,
    Frequency,
    Repeat,
    describe,
    from_rrule,
    weekday_names,
)
from core.events.schemas import EventCreate, EventOut, EventUpdate
from core.events.service import create_event, delete_event, get_event, update_event
from core.teams.models import Workspace
from core.timezones import find_timezones
from webapp.console import Console, LeadConsole, field_errors, undo
from webapp.picker import PEOPLE_FIELDS, picker_context
from webapp.routes import Current, _card, _page, _words
from webapp.words import REMINDER_CHOICES

router = APIRouter(route_class=UnitOfWork, prefix="/app/events", include_in_schema=False)

# Where core's and pydantic's field names are shown on the form.
FIELDS = {
    "title": "title",
    "description": "description",
    "location": "location",
    "timezone": "timezone",
    "date": "date",
    "end_time": "end_time",
    "starts_at": "date",
    "start_date": "date",
    "ends_at": "end_time",
    "end_date": "end_date",
    "rrule": "repeat",
    "exdates": "repeat",
    "repeat": "repeat",
    "interval": "interval",
    "weekdays": "repeat",
    "ordinal": "repeat",
    "count": "count",
    "until": "until",
    "audience": "audience",
    "reminder_offsets": "reminders",
    "confirm": "confirm_hours",
    "show_attendees": "show_attendees",
}


_FREQUENCIES: dict[str, Frequency] = {f: f for f in ("daily", "weekly", "monthly", "yearly")}


@dataclass
class EventForm:
    """The editor's fields as the lead typed them (strings), so a refused form comes back as it
    was, with the errors next to the fields."""

    title: str = ""
    description: str = ""
    location: str = ""
    timezone: str = ""
    all_day: bool = False
    date: str = ""
    time: str = "10:00"
    end_time: str = ""
    end_date: str = ""
    repeat: Repeat = field(default_factory=Repeat)
    interval: str = "1"
    until: str = ""
    count: str = ""
    reminders: list[int] = field(default_factory=list)
    confirm: bool = False
    confirm_hours: str = "0"
    show_attendees: bool = False
    audience: AudienceRule = field(default_factory=AudienceRule)

    @classmethod
    def from_event(cls, event: EventOut) -> EventForm:
        start, end = event.local_start, event.local_end
        repeat = from_rrule(event.rrule)
        minutes = event.confirm_before_minutes
        return cls(
            title=event.title,
            description=event.description,
            location=event.location,
            timezone=event.timezone,
            all_day=event.all_day,
            date=(event.start_date or start.date()).isoformat(),
            time="" if event.all_day else f"{start:%H:%M}",
            end_time="" if event.all_day else f"{end:%H:%M}",
            end_date=event.end_date.isoformat()
            if event.end_date and event.end_date != event.start_date
            else "",
            repeat=repeat,
            interval=str(repeat.interval),
            until=repeat.until.isoformat() if repeat.until else "",
            count=str(repeat.count) if repeat.count else "",
            reminders=list(event.reminder_offsets),
            confirm=minutes is not None,
            confirm_hours=_hours(minutes or 0),
            show_attendees=event.show_attendees,
            audience=event.audience,
        )

    @classmethod
    def from_post(cls, form: FormData, audience: AudienceRule) -> EventForm:
        def text(name: str, limit: int = 200) -> str:
            value = form.get(name, "")
            return value.strip()[:limit] if isinstance(value, str) else ""

        repeat = Repeat(
            frequency=_FREQUENCIES.get(text("repeat"), "none"),
            weekdays=[d for d in form.getlist("weekdays") if isinstance(d, str)],
            monthly_by="weekday" if text("monthly_by") == "weekday" else "day",
            weekday=text("weekday") or "MO",
            custom=text("custom_rrule", 500) or None,
        )
        try:
            repeat.ordinal = int(text("ordinal") or "1")
        except ValueError:
            repeat.ordinal = 0  # refused with a message by Repeat.to_rrule
        reminders = []
        for value in form.getlist("reminders"):
            if isinstance(value, str) and value.isdigit() and int(value) in REMINDER_CHOICES:
                reminders.append(int(value))
        return cls(
            title=text("title"),
            description=text("description", 10_000),
            location=text("location", 500),
            timezone=text("timezone", 100),
            all_day=form.get("all_day") == "yes",
            date=text("date", 10),
            time=text("time", 5),
            end_time=text("end_time", 5),
            end_date=text("end_date", 10),
            repeat=repeat,
            interval=text("interval", 3) or "1",
            until=text("until", 10),
            count=text("count", 5),
            reminders=reminders,
            confirm=form.get("confirm") == "yes",
            confirm_hours=text("confirm_hours", 6) or "0",
            show_attendees=form.get("show_attendees") == "yes",
            audience=audience,
        )

    def to_input(self) -> dict[str, Any]:
        """The EventCreate fields; raises Invalid naming the form field at fault."""
        zones = find_timezones(self.timezone)
        if len(zones) != 1:
            raise Invalid("timezone", f"one of: {', '.join(zones)}" if zones else "unknown zone")
        zone = zones[0]
        day = _date("date", self.date)
        repeat = self.repeat
        repeat.interval = _int("interval", self.interval)
        repeat.until = _date("until", self.until) if self.until else None
        repeat.count = _int("count", self.count) if self.count else None
        data: dict[str, Any] = {
            "title": self.title,
            "description": self.description,
            "location": self.location,
            "timezone": zone,
            "all_day": self.all_day,
            "rrule": repeat.to_rrule(),
            "audience": self.audience,
            "reminder_offsets": self.reminders,
            "confirmation_required": self.confirm,
            "confirm_before_minutes": round(_float("confirm", self.confirm_hours) * 60)
            if self.confirm
            else None,
            "show_attendees": self.show_attendees,
            "starts_at": None,
            "ends_at": None,
            "start_date": None,
            "end_date": None,
        }
        if self.all_day:
            data["start_date"] = day
            data["end_date"] = _date("end_date", self.end_date) if self.end_date else day
        else:
            start = datetime.combine(day, _time("date", self.time))
            data["starts_at"] = start
            if self.end_time:
                end = datetime.combine(day, _time("end_time", self.end_time))
                data["ends_at"] = end if end > start else end + timedelta(days=1)
        return data


def _hours(minutes: int) -> str:
    return f"{minutes / 60:g}"


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(name, "give a date such as 2026-12-01") from None


def _time(name: str, value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise Invalid(name, "give a time such as 10:00") from None


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Invalid(name, "give a whole number") from None


def _float(name: str, value: str) -> float:
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        raise Invalid(name, "give a number of hours, such as 2 or 0.5") from None
    if not 0 <= number <= 24 * 60:
        raise Invalid(name, "give a number of hours from 0 to 1440")
    return number


async def _editor(
    request: Request,
    session: SessionDep,
    lead: Console,
    form: EventForm,
    event_id: uuid.UUID | None,
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    words = lead.words
    picker = await picker_context(session, lead.member.workspace_id, form.audience)
    context = lead.context(
        **picker,
        form=form,
        form_repeat=asdict(form.repeat),
        event_id=event_id,
        errors=errors,
        weekdays=[(d, weekday_names(lead.member.locale)[i]) for i, d in enumerate(WEEKDAYS)],
        ordinals=[(o, words[f"o_{o}"]) for o in ORDINALS],
        reminder_choices=[(m, words[f"rem_{m}"]) for m in REMINDER_CHOICES],
        described=_described(form.repeat, lead.member.locale),
    )
    return _page(request, "event_editor.html", context, status)


def _described(repeat: Repeat, locale: str) -> str:
    try:
        return describe(repeat.to_rrule(), locale)
    except Invalid:
        return ""


@router.get("/new", response_class=HTMLResponse)
async def new_event(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    workspace = await session.get_one(Workspace, lead.member.workspace_id)
    start = (utcnow() + timedelta(days=1)).date()
    form = EventForm(
        timezone=workspace.timezone,
        date=start.isoformat(),
        reminders=list(workspace.default_reminder_offsets),
    )
    return await _editor(request, session, lead, form, None, {})


async def _posted(request: Request) -> tuple[FormData, AudienceRule]:
    form = await request.form()
    ids: dict[str, list[uuid.UUID]] = {}
    for name in ("groups", "tags", "roles", *PEOPLE_FIELDS, "exclude_groups", "exclude_tags"):
        try:
            ids[name] = [uuid.UUID(str(v)) for v in form.getlist(name)]
        except ValueError:
            ids[name] = []  # a tampered id: ignored, as if not ticked
    rule = AudienceRule(**ids, tags_mode="all" if form.get("tags_mode") == "all" else "any")
    return form, rule


@router.post("/new", response_class=HTMLResponse)
async def create(request: Request, session: SessionDep, lead: LeadConsole) -> Response:
    posted, rule = await _posted(request)
    form = EventForm.from_post(posted, rule)
    try:
        if rule.is_empty:
            raise Invalid("audience", lead.words["pick_someone"])
        out = await create_event(session, lead.actor, EventCreate.model_validate(form.to_input()))
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        return await _editor(request, session, lead, form, None, field_errors(exc, FIELDS), 422)
    return _go(f"/app/events/{out.id}/board")


def _go(url: str) -> Response:
    """Where htmx should take the browser next (a plain redirect for non-htmx clients)."""
    return Response(status_code=204, headers={"HX-Redirect": url})


@router.get("/{event_id}/edit", response_class=HTMLResponse)
async def edit_event(
    request: Request, event_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    try:
        event = await get_event(session, lead.actor, event_id)
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    return await _editor(request, session, lead, EventForm.from_event(event), event_id, {})


@router.post("/{event_id}/edit", response_class=HTMLResponse)
async def save_event(
    request: Request, event_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> Response:
    posted, rule = await _posted(request)
    form = EventForm.from_post(posted, rule)
    try:
        if rule.is_empty:
            raise Invalid("audience", lead.words["pick_someone"])
        await update_event(session, lead.actor, event_id, EventUpdate(**form.to_input()))
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        return await _editor(request, session, lead, form, event_id, field_errors(exc, FIELDS), 422)
    return _go(f"/app/events/{event_id}/board")


@router.post("/{event_id}/delete", response_class=HTMLResponse)
async def remove_event(event_id: uuid.UUID, session: SessionDep, lead: LeadConsole) -> Response:
    try:
        await delete_event(session, lead.actor, event_id)
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    return _go("/app")


@router.get("/{event_id}", response_class=HTMLResponse)
async def details(
    request: Request, event_id: uuid.UUID, session: SessionDep, me: Current, occurrence: str = ""
) -> HTMLResponse:
    """A member's view of one occurrence: where, when in their zone, their answer, and who else
    is going when the lead allows it."""
    signed, member = me
    try:
        shown = await event_details(session, member, event_id, occurrence[:16])
    except (NotFound, Invalid):
        return HTMLResponse("not found", status_code=404)
    item = AgendaItem(
        event_id=shown.event_id,
        title=shown.title,
        location=shown.location,
        all_day=shown.all_day,
        starts_at=shown.starts_at,
        occurrence=shown.occurrence,
        answer=shown.answer,
        asks_confirmation=shown.asks_confirmation,
        deadline=shown.deadline,
    )
    return _page(
        request,
        "event.html",
        {
            "member": member,
            "words": _words(member.locale),
            "csrf": signed.csrf,
            "shown": shown,
            "card": _card(item, member),
            "repeats": describe(shown.rrule, member.locale),
        },
    )
