"""Groups and tags for leads: create, rename, merge and delete, each merge and delete after a
confirm step that says how many members it affects."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.errors import DomainError, NotFound
from core.paging import NameQuery
from core.teams import groups, tags
from core.teams.merging import merge_groups, merge_tags
from core.teams.schemas import GroupCreate, GroupUpdate, TagCreate, TagUpdate
from webapp.console import Console, LeadConsole, alert, field_errors, undo
from webapp.errors import describe
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/labels", include_in_schema=False)
Kind = Literal["groups", "tags"]


async def _items(session: Any, lead: Console, kind: Kind) -> list[Any]:
    everything = NameQuery(limit=200, offset=0)  # the API pages beyond that
    listed = groups.list_groups if kind == "groups" else tags.list_tags
    return list((await listed(session, lead.actor, everything)).items)


async def _section(
    request: Request,
    session: Any,
    lead: Console,
    kind: Kind,
    errors: dict[str, str] | None = None,
    note: str = "",
    status: int = 200,
) -> HTMLResponse:
    context = lead.context(
        kind=kind, items=await _items(session, lead, kind), errors=errors or {}, note=note
    )
    return _page(request, "_labels_section.html", context, status)


@router.get("", response_class=HTMLResponse)
async def labels_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    sections = {kind: await _items(session, lead, kind) for kind in ("groups", "tags")}
    return _page(request, "labels.html", lead.context(sections=sections, errors={}, note=""))


async def _get(session: Any, lead: Console, kind: Kind, ident: uuid.UUID) -> Any:
    getter = groups.get_group if kind == "groups" else tags.get_tag
    return await getter(session, lead.actor, ident)


@router.post("/{kind}/new", response_class=HTMLResponse)
async def create(
    request: Request,
    kind: Kind,
    session: SessionDep,
    lead: LeadConsole,
    name: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    try:
        if kind == "groups":
            await groups.create_group(session, lead.actor, GroupCreate(name=name))
        else:
            await tags.create_tag(session, lead.actor, TagCreate(name=name))
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        errors = field_errors(exc, {"name": "new"})
        return await _section(request, session, lead, kind, errors, status=422)
    return await _section(request, session, lead, kind, note=lead.words["done"])


@router.post("/{kind}/{ident}/rename", response_class=HTMLResponse)
async def rename(
    request: Request,
    kind: Kind,
    ident: uuid.UUID,
    session: SessionDep,
    lead: LeadConsole,
    name: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    try:
        if kind == "groups":
            await groups.update_group(session, lead.actor, ident, GroupUpdate(name=name))
        else:
            await tags.rename_tag(session, lead.actor, ident, TagUpdate(name=name))
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        errors = {str(ident): field_errors(exc, {}).get("form", "")}
        return await _section(request, session, lead, kind, errors, status=422)
    return await _section(request, session, lead, kind, note=lead.words["done"])


@router.post("/{kind}/{ident}/merge", response_class=HTMLResponse)
async def merge(
    request: Request,
    kind: Kind,
    ident: uuid.UUID,
    session: SessionDep,
    lead: LeadConsole,
    into: Annotated[uuid.UUID | None, Form()] = None,
    confirm: Annotated[str, Form(max_length=3)] = "",
) -> HTMLResponse:
    """First the question (how many members move), then, confirmed, the merge."""
    words = lead.words
    if into is None:
        return alert(words["pick_target"])
    try:
        source, target = (
            await _get(session, lead, kind, ident),
            await _get(session, lead, kind, into),
        )
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    if confirm != "yes":
        question = words["confirm_merge"].format(
            name=source.name, into=target.name, n=source.member_count
        )
        return _page(
            request,
            "_confirm.html",
            lead.context(
                question=question,
                action=f"/app/labels/{kind}/{ident}/merge",
                values={"into": str(into), "confirm": "yes"},
                yes=words["yes_merge"],
                kind=kind,
            ),
        )
    try:
        await (merge_groups if kind == "groups" else merge_tags)(session, lead.actor, ident, into)
    except DomainError as exc:
        await undo(session, lead)
        return alert(describe(exc, lead.member.locale))
    return await _section(request, session, lead, kind, note=words["done"])


@router.post("/{kind}/{ident}/delete", response_class=HTMLResponse)
async def delete(
    request: Request,
    kind: Kind,
    ident: uuid.UUID,
    session: SessionDep,
    lead: LeadConsole,
    confirm: Annotated[str, Form(max_length=3)] = "",
) -> HTMLResponse:
    words = lead.words
    try:
        item = await _get(session, lead, kind, ident)
    except NotFound:
        return HTMLResponse("not found", status_code=404)
    if confirm != "yes":
        key = "confirm_delete_group" if kind == "groups" else "confirm_delete_tag"
        return _page(
            request,
            "_confirm.html",
            lead.context(
                question=words[key].format(name=item.name, n=item.member_count),
                action=f"/app/labels/{kind}/{ident}/delete",
                values={"confirm": "yes"},
                yes=words["yes_delete"],
                kind=kind,
            ),
        )
    await (groups.delete_group if kind == "groups" else tags.delete_tag)(session, lead.actor, ident)
    return await _section(request, session, lead, kind, note=words["done"])
