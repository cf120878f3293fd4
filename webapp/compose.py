"""The lead's broadcast composer: the audience picker, a text with member variables, a preview for
a chosen member, and "send now" or at a time, through the engine; then its progress, live."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.clock import utcnow
from core.errors import DomainError, NotFound
from core.notify.broadcasts import (
    BroadcastCreate,
    BroadcastOut,
    cancel_broadcast,
    create_broadcast,
    get_broadcast,
)
from core.notify.messages import check_broadcast_template, format_when, render_broadcast
from core.notify.templates import get_template, list_templates
from core.teams.models import Member
from webapp.console import Console, LeadConsole, alert
from webapp.errors import describe
from webapp.picker import AudienceForm, picker_context
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/compose", include_in_schema=False)
STARTER = "{{ member.first_name }}, "


@router.get("", response_class=HTMLResponse)
async def compose_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    picker = await picker_context(session, lead.member.workspace_id)
    saved = await list_templates(session, lead.actor)
    context = lead.context(
        **picker, errors={}, zone=lead.member.timezone, templates=saved, text=STARTER
    )
    return _page(request, "compose.html", context)


@router.get("/template", response_class=HTMLResponse)
async def template_text(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    template_id: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """The text box filled with the chosen template's default wording (its language variants
    and buttons come along when the broadcast is sent)."""
    text = STARTER
    if template_id:
        try:
            chosen = uuid.UUID(template_id)
        except ValueError:
            return alert("template_id: not a template id", 422)
        text = (await get_template(session, lead.actor, chosen)).text
    return _page(request, "_compose_text.html", lead.context(text=text))


@router.post("/preview", response_class=HTMLResponse)
async def preview(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    text: Annotated[str, Form(max_length=4000)] = "",
    sample: Annotated[uuid.UUID | None, Form()] = None,
) -> HTMLResponse:
    """The text as the chosen member (or the lead) would read it, or what is wrong with it."""
    reader = lead.member
    if sample is not None:
        chosen = await session.get(Member, sample)
        if chosen is not None and chosen.workspace_id == lead.member.workspace_id:
            reader = chosen
    try:
        check_broadcast_template(text)
    except ValueError as exc:
        return alert(str(exc), 200)
    rendered = render_broadcast(text, reader).text
    return _page(request, "_preview.html", {"reader": reader, "text": rendered})


def _parse_send_at(value: str, zone: str) -> datetime | None:
    """The lead's local "2026-12-01T09:00" (what datetime-local sends) as an aware time."""
    value = value.strip()
    if not value:
        return None
    local = datetime.fromisoformat(value.replace(" ", "T"))
    return local if local.tzinfo else local.replace(tzinfo=ZoneInfo(zone))


def _progress(request: Request, lead: Console, out: BroadcastOut) -> HTMLResponse:
    upcoming = out.send_at > utcnow()
    when = format_when(out.send_at, lead.member.timezone, lead.member.locale)
    return _page(
        request,
        "_sent.html",
        lead.context(broadcast=out, upcoming=upcoming, when=when),
    )


@router.post("/send", response_class=HTMLResponse)
async def send(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    rule: AudienceForm,
    text: Annotated[str, Form(max_length=4000)] = "",
    send_at: Annotated[str, Form(max_length=32)] = "",
    template_id: Annotated[str, Form(max_length=40)] = "",
    local_time: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    words = lead.words
    if rule.is_empty:
        return alert(words["pick_someone"])
    try:
        at = _parse_send_at(send_at, lead.member.timezone)
    except ValueError:
        return alert(words["send_at_bad"])
    try:
        request_data = BroadcastCreate(
            audience=rule,
            text=text or " ",
            send_at=at,
            local_time=local_time and at is not None,
            template_id=uuid.UUID(template_id) if template_id else None,
        )
        out, _ = await create_broadcast(session, lead.actor, request_data)
    except DomainError as exc:
        return alert(
            words["send_at_bad"]
            if exc.detail.startswith("send_at")
            else describe(exc, lead.member.locale)
        )
    except ValueError as exc:
        return alert(str(exc))
    return _progress(request, lead, out)


@router.get("/{broadcast_id}", response_class=HTMLResponse)
async def progress(
    request: Request, broadcast_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    """Polled by the page while the broadcast goes out: queued, sent, failed, unreachable."""
    try:
        out = await get_broadcast(session, lead.actor, broadcast_id)
    except DomainError:
        return HTMLResponse("not found", status_code=404)
    return _progress(request, lead, out)


@router.post("/{broadcast_id}/cancel", response_class=HTMLResponse)
async def cancel(
    request: Request, broadcast_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    """Cancel a scheduled broadcast before it goes out."""
    try:
        out = await cancel_broadcast(session, lead.actor, broadcast_id)
    except DomainError as exc:
        return alert(describe(exc, lead.member.locale), 404 if isinstance(exc, NotFound) else 422)
    return _progress(request, lead, out)
