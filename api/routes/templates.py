from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.audience.rule import AudienceRule
from core.notify import templates
from core.notify.templates import (
    Buttons,
    Preview,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    Text,
    Variants,
    wordings,
)
from core.teams.schemas import _In

router = APIRouter(route_class=UnitOfWork, prefix="/templates", tags=["templates"])


class PreviewRequest(_In):
    """Wording to try (as in a template), for a member or the audience's first member."""

    text: Text
    variants: Variants | None = None
    buttons: Buttons | None = None
    member_id: uuid.UUID | None = None
    audience: AudienceRule | None = None


class TemplatePreviewRequest(_In):
    member_id: uuid.UUID | None = None
    audience: AudienceRule | None = None


@router.get("")
async def list_templates(actor: ActorDep, session: SessionDep) -> list[TemplateOut]:
    """The workspace's message templates, by name."""
    return await templates.list_templates(session, actor)


@router.post("", status_code=201)
async def create_template(data: TemplateIn, actor: ActorDep, session: SessionDep) -> TemplateOut:
    """A template: default ``text``, ``variants`` per language (``{"ru": "…"}``) and link
    ``buttons``. Wording is sandboxed Jinja2 with ``{{ member.first_name }}`` and
    ``{{ member.name }}``; an unknown variable or broken syntax is a 422 naming the field."""
    out = await templates.create_template(session, actor, data)
    return out


@router.get("/{template_id}")
async def get_template(template_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> TemplateOut:
    return TemplateOut.model_validate(
        await templates.get_template(session, actor, template_id), from_attributes=True
    )


@router.patch("/{template_id}")
async def update_template(
    template_id: uuid.UUID, patch: TemplatePatch, actor: ActorDep, session: SessionDep
) -> TemplateOut:
    out = await templates.update_template(session, actor, template_id, patch)
    return out


@router.delete("/{template_id}", status_code=204)
async def delete_template(template_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """Broadcasts made from it keep their own copy of the wording."""
    await templates.delete_template(session, actor, template_id)
    return Response(status_code=204)


@router.post("/preview")
async def preview_wording(data: PreviewRequest, actor: ActorDep, session: SessionDep) -> Preview:
    """Render wording as one member would read it (their language and name)."""
    return await templates.preview(
        session,
        actor,
        data.text,
        wordings(data.variants),
        data.buttons or [],
        data.member_id,
        data.audience,
    )


@router.post("/{template_id}/preview")
async def preview_template(
    template_id: uuid.UUID, data: TemplatePreviewRequest, actor: ActorDep, session: SessionDep
) -> Preview:
    """A saved template as a chosen member (or the audience's first member) would read it."""
    template = await templates.get_template(session, actor, template_id)
    out = TemplateOut.model_validate(template, from_attributes=True)
    return await templates.preview(
        session, actor, out.text, out.variants, out.buttons, data.member_id, data.audience
    )
