"""The lead's broadcast composer: an audience picker whose count and first names update as the
lead clicks (htmx, debounced), a text with member variables, a preview for a chosen member, and
"send now" through the engine."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.deps import SessionDep
from core.errors import DomainError
from core.notify.audience import AudienceRule, preview_audience
from core.notify.broadcasts import BroadcastCreate, create_broadcast, get_broadcast
from core.notify.messages import check_broadcast_template, render_broadcast
from core.teams.models import BuiltinRole, Group, Member, Tag
from core.teams.permissions import Actor
from core.teams.self_service import leads_of
from webapp.auth import csrf_ok
from webapp.routes import Current, _page, _words

router = APIRouter(prefix="/app/compose", include_in_schema=False)
IdList = Annotated[list[uuid.UUID], Form()]


async def audience_form(
    groups: IdList = [],  # noqa: B006 (FastAPI reads the default, it is never mutated)
    tags: IdList = [],  # noqa: B006
    tags_mode: Annotated[str, Form(max_length=3)] = "any",
    exclude_tags: IdList = [],  # noqa: B006
) -> AudienceRule:
    """The audience the picker's checkboxes describe."""
    return AudienceRule(
        groups=groups,
        tags=tags,
        tags_mode="all" if tags_mode == "all" else "any",
        exclude_tags=exclude_tags,
    )


AudienceForm = Annotated[AudienceRule, Depends(audience_form)]


async def _lead_actor(session: Any, member: Member) -> Actor | None:
    if not await leads_of(session, member):
        return None
    return Actor(member.workspace_id, BuiltinRole.lead, label=f"{member.name} (Mini App)")


@router.get("", response_class=HTMLResponse)
async def compose_page(request: Request, session: SessionDep, me: Current) -> HTMLResponse:
    signed, member = me
    if await _lead_actor(session, member) is None:
        return HTMLResponse(_words(member.locale)["lead_only"], status_code=403)
    groups = list(
        await session.scalars(
            select(Group).where(Group.workspace_id == member.workspace_id).order_by(Group.name)
        )
    )
    tags = list(
        await session.scalars(
            select(Tag).where(Tag.workspace_id == member.workspace_id).order_by(Tag.name)
        )
    )
    return _page(
        request,
        "compose.html",
        {
            "member": member,
            "words": _words(member.locale),
            "csrf": signed.csrf,
            "groups": groups,
            "tags": tags,
        },
    )


@router.post("/audience", response_class=HTMLResponse)
async def audience(
    request: Request,
    session: SessionDep,
    me: Current,
    rule: AudienceForm,
) -> HTMLResponse:
    """The live count: how many the picked audience reaches, and the first names."""
    signed, member = me
    actor = await _lead_actor(session, member)
    if actor is None or not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        return HTMLResponse("", status_code=403)
    try:
        preview = await preview_audience(session, actor, rule, 8)
    except DomainError as exc:
        return HTMLResponse(f'<p class="error" role="alert">{exc.detail}</p>', status_code=422)
    words = _words(member.locale)
    return _page(
        request,
        "_audience.html",
        {"words": words, "preview": preview, "reachable": preview.by_status.active},
    )


@router.post("/preview", response_class=HTMLResponse)
async def preview(
    request: Request,
    session: SessionDep,
    me: Current,
    text: Annotated[str, Form(max_length=4000)] = "",
    sample: Annotated[uuid.UUID | None, Form()] = None,
) -> HTMLResponse:
    """The text as the chosen member (or the lead) would read it, or what is wrong with it."""
    signed, member = me
    if await _lead_actor(session, member) is None or not csrf_ok(
        signed, request.headers.get("X-CSRF-Token")
    ):
        return HTMLResponse("", status_code=403)
    reader = member
    if sample is not None:
        chosen = await session.get(Member, sample)
        if chosen is not None and chosen.workspace_id == member.workspace_id:
            reader = chosen
    try:
        check_broadcast_template(text)
    except ValueError as exc:
        return HTMLResponse(f'<p class="error" role="alert">{exc}</p>')
    rendered = render_broadcast(text, reader).text
    return _page(request, "_preview.html", {"reader": reader, "text": rendered})


@router.post("/send", response_class=HTMLResponse)
async def send(
    request: Request,
    session: SessionDep,
    me: Current,
    rule: AudienceForm,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> HTMLResponse:
    signed, member = me
    actor = await _lead_actor(session, member)
    if actor is None or not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        return HTMLResponse(_words(member.locale)["lead_only"], status_code=403)
    words = _words(member.locale)
    if rule.is_empty:
        return HTMLResponse(
            f'<p class="error" role="alert">{words["pick_someone"]}</p>', status_code=422
        )
    try:
        out = await create_broadcast(
            session, actor, BroadcastCreate(audience=rule, text=text or " ")
        )
    except DomainError as exc:
        return HTMLResponse(f'<p class="error" role="alert">{exc.detail}</p>', status_code=422)
    except ValueError as exc:
        return HTMLResponse(f'<p class="error" role="alert">{exc}</p>', status_code=422)
    await session.commit()
    return _page(request, "_sent.html", {"words": words, "broadcast": out})


@router.get("/{broadcast_id}", response_class=HTMLResponse)
async def progress(
    request: Request, broadcast_id: uuid.UUID, session: SessionDep, me: Current
) -> HTMLResponse:
    """Polled by the page while the broadcast goes out: queued, sent, failed, unreachable."""
    _, member = me
    actor = await _lead_actor(session, member)
    if actor is None:
        return HTMLResponse("", status_code=403)
    try:
        out = await get_broadcast(session, actor, broadcast_id)
    except DomainError:
        return HTMLResponse("not found", status_code=404)
    return _page(request, "_sent.html", {"words": _words(member.locale), "broadcast": out})
