"""The lead's people page: list, search and filter (htmx partials), tags and groups in bulk,
adding a person, and invite links (personal or for a group) to copy."""

from __future__ import annotations

import uuid
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.errors import DomainError, NotFound
from core.teams.groups import add_group_members, remove_group_members
from core.teams.invites import InviteCreate, create_invite, served_messengers
from core.teams.members import create_member, list_members
from core.teams.models import Group, MemberStatus, Tag
from core.teams.schemas import MemberCreate, MemberFilter, MemberIds
from core.teams.tags import tag_members, untag_members
from webapp.console import Console, LeadConsole, field_errors, undo
from webapp.errors import describe
from webapp.picker import by_name
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/people", include_in_schema=False)
PAGE = 50
BULK = {
    "add_tag": tag_members,
    "remove_tag": untag_members,
    "add_group": add_group_members,
    "remove_group": remove_group_members,
}


def _filter(q: str, status: str, group: str, tag: str, offset: int) -> MemberFilter:
    """The list's filter from the query string; anything unreadable is simply not applied."""

    def ident(value: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(value) if value else None
        except ValueError:
            return None

    return MemberFilter(
        q=q.strip()[:200] or None,
        status=MemberStatus(status) if status in MemberStatus.__members__ else None,
        group_id=ident(group),
        tag_id=ident(tag),
        limit=PAGE,
        offset=max(0, offset),
    )


async def _list_context(session: AsyncSession, lead: Console, flt: MemberFilter) -> dict[str, Any]:
    page = await list_members(session, lead.actor, flt)
    query = {
        "q": flt.q or "",
        "status": flt.status.value if flt.status else "",
        "group": str(flt.group_id or ""),
        "tag": str(flt.tag_id or ""),
    }
    return {
        "people": page.items,
        "total": page.total,
        "shown": flt.offset + len(page.items),
        "next_offset": flt.offset + PAGE if flt.offset + PAGE < page.total else None,
        "query": query,
        "statuses": [s.value for s in MemberStatus],
    }


@router.get("", response_class=HTMLResponse)
async def people_page(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    q: str = "",
    status: str = "",
    group: str = "",
    tag: str = "",
    offset: int = 0,
) -> HTMLResponse:
    """The whole page; an htmx search or filter change asks for the rows alone."""
    flt = _filter(q, status, group, tag, offset)
    listing = await _list_context(session, lead, flt)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") != "main":
        name = "_people_rows.html" if offset else "_people_list.html"
        return _page(request, name, lead.context(**listing))
    ws = lead.member.workspace_id
    labels = {"groups": await by_name(session, Group, ws), "tags": await by_name(session, Tag, ws)}
    context = lead.context(**listing, **labels, errors={}, form={"name": "", "email": ""})
    return _page(request, "people.html", context)


@router.post("/bulk", response_class=HTMLResponse)
async def bulk(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    action: Annotated[str, Form(max_length=16)] = "",
    target: Annotated[str, Form(max_length=40)] = "",
    member_ids: Annotated[list[uuid.UUID], Form()] = [],  # noqa: B006
) -> HTMLResponse:
    """Add or remove a tag or group for the ticked people: all of them, or none on an error."""
    words = lead.words
    change = BULK.get(action)
    if not member_ids:
        return _status(words["pick_members"], 422)
    try:
        target_id = uuid.UUID(target)
    except ValueError:
        return _status(words["pick_target"], 422)
    if change is None:
        return _status(words["pick_target"], 422)
    try:
        result = await change(session, lead.actor, target_id, MemberIds(member_ids=member_ids))
    except DomainError as exc:
        await undo(session, lead)
        return _status(describe(exc, lead.member.locale), 404 if isinstance(exc, NotFound) else 422)
    done = _status(words["bulk_done"].format(changed=result.changed, unchanged=result.unchanged))
    done.headers["HX-Trigger"] = "people-changed"  # the list shows the new tags and groups
    return done


def _status(text: str, status: int = 200) -> HTMLResponse:
    role = "status" if status == 200 else "alert"
    css = "saved" if status == 200 else "error"
    return HTMLResponse(f'<p class="{css}" role="{role}">{escape(text)}</p>', status_code=status)


@router.post("/add", response_class=HTMLResponse)
async def add_person(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    name: Annotated[str, Form(max_length=300)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
) -> HTMLResponse:
    """Add someone by name (and email), then offer their personal invite link."""
    form = {"name": name, "email": email}
    try:
        data = MemberCreate(name=name, email=email.strip() or None)
        person = await create_member(session, lead.actor, data)
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        errors = field_errors(exc, {"name": "name", "email": "email"})
        return _page(request, "_add_person.html", lead.context(form=form, errors=errors), 422)
    return _page(
        request,
        "_add_person.html",
        lead.context(form={"name": "", "email": ""}, errors={}, added=person),
    )


@router.post("/invite", response_class=HTMLResponse)
async def invite(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    member_id: Annotated[uuid.UUID | None, Form()] = None,
    group_id: Annotated[uuid.UUID | None, Form()] = None,
    max_uses: Annotated[str, Form(max_length=6)] = "",
    expires_in_hours: Annotated[str, Form(max_length=5)] = "",
) -> HTMLResponse:
    """A personal invite for one person, or a group invite; the link is shown this once."""
    words = lead.words
    try:
        data = InviteCreate(
            member_id=member_id,
            group_id=group_id,
            max_uses=int(max_uses) if max_uses.strip() else None,
            **({"expires_in_hours": int(expires_in_hours)} if expires_in_hours.strip() else {}),
        )
        settings = request.app.state.settings
        issued = await create_invite(
            session,
            lead.actor,
            data,
            settings.telegram_bot_username,
            settings.max_bot_username,
            served_messengers(settings.max_token is not None),
        )
    except ValueError as exc:  # int() or pydantic
        await undo(session, lead)
        message = (
            field_errors(exc, {}).get("form", words["number_bad"])
            if isinstance(exc, ValidationError)
            else words["number_bad"]
        )
        return _status(message, 422)
    except DomainError as exc:
        await undo(session, lead)
        return _status(describe(exc, lead.member.locale), 404 if isinstance(exc, NotFound) else 422)
    who = issued.member.name if issued.member else issued.group.name if issued.group else ""
    return _page(request, "_invite.html", lead.context(invite=issued, who=who))
