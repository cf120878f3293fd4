"""The lead's message templates: default text, Russian and English wording, a link button; a
preview for a chosen member; errors (unknown variable, broken syntax) next to the field."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.errors import DomainError
from core.notify.templates import (
    TemplateIn,
    TemplatePatch,
    create_template,
    delete_template,
    list_templates,
    preview,
    update_template,
)
from core.teams.models import Member
from webapp.console import Console, LeadConsole, field_errors, undo
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/templates", include_in_schema=False)
FIELDS = {
    "name": "name",
    "text": "text",
    "variants.ru": "text_ru",
    "variants.en": "text_en",
    "buttons": "link_url",
}
SAMPLE_PEOPLE = 50


class TemplateForm:
    def __init__(
        self,
        name: Annotated[str, Form(max_length=200)] = "",
        text: Annotated[str, Form(max_length=4000)] = "",
        text_ru: Annotated[str, Form(max_length=4000)] = "",
        text_en: Annotated[str, Form(max_length=4000)] = "",
        link_text: Annotated[str, Form(max_length=100)] = "",
        link_url: Annotated[str, Form(max_length=2000)] = "",
    ) -> None:
        self.values = {
            "name": name,
            "text": text,
            "text_ru": text_ru,
            "text_en": text_en,
            "link_text": link_text,
            "link_url": link_url,
        }

    def data(self) -> dict[str, Any]:
        v = self.values
        variants = {k: v[f"text_{k}"] for k in ("ru", "en") if v[f"text_{k}"].strip()}
        buttons = (
            [{"text": v["link_text"] or v["link_url"], "url": v["link_url"]}]
            if v["link_url"].strip()
            else []
        )
        return {"name": v["name"], "text": v["text"], "variants": variants, "buttons": buttons}


def _form_of(template: Any) -> dict[str, str]:
    link = template.buttons[0] if template.buttons else None
    return {
        "name": template.name,
        "text": template.text,
        "text_ru": template.variants.get("ru", ""),
        "text_en": template.variants.get("en", ""),
        "link_text": link.text if link else "",
        "link_url": str(link.url) if link else "",
    }


async def _section(
    request: Request,
    session: SessionDep,
    lead: Console,
    new: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    editing: uuid.UUID | None = None,
    status: int = 200,
) -> HTMLResponse:
    saved = await list_templates(session, lead.actor)
    people = list(
        await session.scalars(
            select(Member)
            .where(Member.workspace_id == lead.member.workspace_id)
            .order_by(Member.name)
            .limit(SAMPLE_PEOPLE)
        )
    )
    context = lead.context(
        templates=[(t, _form_of(t)) for t in saved],
        new=new or {k: "" for k in ("name", "text", "text_ru", "text_en", "link_text", "link_url")},
        errors=errors or {},
        editing=editing,
        people=people,
    )
    return _page(request, "templates.html", context, status)


@router.get("", response_class=HTMLResponse)
async def templates_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    return await _section(request, session, lead)


@router.post("", response_class=HTMLResponse)
async def save(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    form: Annotated[TemplateForm, Depends()],
    template_id: Annotated[uuid.UUID | None, Form()] = None,
) -> HTMLResponse:
    """Create (no template_id) or change a template; nothing is written unless all is right."""
    try:
        if template_id is None:
            await create_template(session, lead.actor, TemplateIn.model_validate(form.data()))
        else:
            await update_template(
                session, lead.actor, template_id, TemplatePatch.model_validate(form.data())
            )
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        errors = field_errors(exc, FIELDS)
        return await _section(request, session, lead, form.values, errors, template_id, status=422)
    return await _section(request, session, lead)


@router.post("/{template_id}/delete", response_class=HTMLResponse)
async def remove(
    request: Request, template_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    await delete_template(session, lead.actor, template_id)
    return await _section(request, session, lead)


@router.post("/preview", response_class=HTMLResponse)
async def show_preview(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    form: Annotated[TemplateForm, Depends()],
    sample: Annotated[uuid.UUID | None, Form()] = None,
) -> HTMLResponse:
    """The wording as the chosen member would read it (their language), or what is wrong."""
    data = form.data()
    try:
        checked = TemplateIn.model_validate(data | {"name": data["name"] or "preview"})
        shown = await preview(
            session,
            lead.actor,
            checked.text,
            {str(k): v for k, v in checked.variants.items()},
            checked.buttons,
            sample or lead.member.id,
        )
    except (DomainError, ValidationError) as exc:
        errors = field_errors(exc, FIELDS)
        return _page(request, "_template_preview.html", lead.context(errors=errors, shown=None))
    return _page(request, "_template_preview.html", lead.context(errors={}, shown=shown))
