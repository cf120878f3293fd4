"""The owner's admin page: API tokens (create, see last use, revoke) and the workspace's
settings (name, default time zone, default reminders, send limits). Core refuses anyone but an
owner; the page only says so."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.errors import DomainError, Forbidden, NotFound
from core.notify.messages import format_when
from core.teams.builtin_roles import BuiltinRole
from core.teams.tokens import create_token, list_tokens, revoke_token
from core.teams.workspace_settings import (
    WorkspaceSettings,
    WorkspaceSettingsUpdate,
    get_workspace_settings,
    update_workspace_settings,
)
from core.timezones import find_timezones
from webapp.console import Console, LeadConsole, Refused, alert, field_errors, undo
from webapp.routes import _page
from webapp.words import REMINDER_CHOICES

router = APIRouter(route_class=UnitOfWork, prefix="/app/admin", include_in_schema=False)
SETTINGS_FIELDS = {
    "name": "name",
    "timezone": "timezone",
    "default_reminder_offsets": "reminders",
    "rate_per_second": "rate_per_second",
    "daily_limit": "daily_limit",
}


async def _tokens(session: Any, lead: Console) -> list[dict[str, Any]]:
    zone, locale = lead.member.timezone, lead.member.locale
    return [
        {
            "token": token,
            "created": format_when(token.created_at, zone, locale),
            "used": format_when(token.last_used_at, zone, locale) if token.last_used_at else "",
        }
        for token in await list_tokens(session, lead.actor)
    ]


def _settings_form(current: WorkspaceSettings) -> dict[str, Any]:
    return {
        "name": current.name,
        "timezone": current.timezone,
        "reminders": current.default_reminder_offsets,
        "rate_per_second": f"{current.rate_per_second:g}" if current.rate_per_second else "",
        "daily_limit": str(current.daily_limit or ""),
    }


def _owner_only(lead: Console) -> None:
    if lead.actor.role is not BuiltinRole.owner:
        raise Refused(lead.words["owner_only"])


@router.get("", response_class=HTMLResponse)
async def admin_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    try:
        tokens = await _tokens(session, lead)
    except Forbidden:
        raise Refused(lead.words["owner_only"]) from None
    current = await get_workspace_settings(session, lead.actor)
    context = lead.context(
        tokens=tokens,
        form=_settings_form(current),
        errors={},
        saved=False,
        reminder_choices=[(m, lead.words[f"rem_{m}"]) for m in REMINDER_CHOICES],
        roles=[r.value for r in BuiltinRole],
        issued=None,
    )
    return _page(request, "admin.html", context)


@router.post("/tokens", response_class=HTMLResponse)
async def new_token(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=16)] = "lead",
) -> HTMLResponse:
    """Create a token; its secret is shown this once."""
    if role not in BuiltinRole.__members__ or not name.strip() or len(name.strip()) > 100:
        return alert(lead.words["token_name_bad"])
    try:
        issued = await create_token(session, lead.actor, BuiltinRole(role), name.strip())
    except Forbidden:
        raise Refused(lead.words["owner_only"]) from None
    return _page(
        request, "_tokens.html", lead.context(tokens=await _tokens(session, lead), issued=issued)
    )


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke(
    request: Request, token_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    try:
        await revoke_token(session, lead.actor, token_id)
    except Forbidden:
        raise Refused(lead.words["owner_only"]) from None
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    return _page(
        request, "_tokens.html", lead.context(tokens=await _tokens(session, lead), issued=None)
    )


@router.post("/settings", response_class=HTMLResponse)
async def save_settings(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    name: Annotated[str, Form(max_length=200)] = "",
    timezone: Annotated[str, Form(max_length=100)] = "",
    reminders: Annotated[list[str], Form()] = [],  # noqa: B006
    rate_per_second: Annotated[str, Form(max_length=12)] = "",
    daily_limit: Annotated[str, Form(max_length=12)] = "",
) -> HTMLResponse:
    """Check every field, show errors next to them, and change nothing unless all are right."""
    _owner_only(lead)
    words = lead.words
    form = {
        "name": name,
        "timezone": timezone,
        "reminders": reminders,
        "rate_per_second": rate_per_second,
        "daily_limit": daily_limit,
    }
    errors: dict[str, str] = {}
    zones = find_timezones(timezone)
    if len(zones) != 1:
        errors["timezone"] = (
            words["zone_many"].format(zones=", ".join(zones)) if zones else words["zone_unknown"]
        )
    rate = daily = None
    try:
        rate = float(rate_per_second.replace(",", ".")) if rate_per_second.strip() else None
    except ValueError:
        errors["rate_per_second"] = words["number_bad"]
    try:
        daily = int(daily_limit) if daily_limit.strip() else None
    except ValueError:
        errors["daily_limit"] = words["number_bad"]
    offsets = [int(m) for m in reminders if m.isdigit() and int(m) in REMINDER_CHOICES]
    form["reminders"] = offsets
    if not errors:
        try:
            patch = WorkspaceSettingsUpdate(
                name=name,
                timezone=zones[0],
                default_reminder_offsets=offsets,
                rate_per_second=rate,
                daily_limit=daily,
            )
            current = await update_workspace_settings(session, lead.actor, patch)
        except (DomainError, ValidationError) as exc:
            await undo(session, lead)
            errors = field_errors(exc, SETTINGS_FIELDS)
    context = lead.context(
        form=form,
        errors=errors,
        saved=not errors,
        reminder_choices=[(m, words[f"rem_{m}"]) for m in REMINDER_CHOICES],
    )
    if errors:
        return _page(request, "_workspace_form.html", context, 422)
    context["form"] = _settings_form(current)
    return _page(request, "_workspace_form.html", context)
