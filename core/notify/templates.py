"""A workspace's message templates, and the message content they share with broadcasts: a default
text, per-language variants and link buttons, each checked when saved (sandboxed Jinja2), so a
typo is a 422 naming the field and never a failed send later."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AnyUrl, BaseModel, Field, StringConstraints, field_validator
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, audience_query
from core.audit import record_by
from core.errors import Conflict, FieldError, Invalid
from core.notify.messages import check_broadcast_template, render_broadcast
from core.notify.models import MessageTemplate
from core.scoping import get_scoped
from core.teams.models import Member
from core.teams.permissions import Action, Actor
from core.teams.schemas import Locale, ShortName, _In

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
LINK_SCHEMES = ("https", "http", "tg")


class LinkButton(_In):
    text: Label
    url: AnyUrl = Field(description="https://, http:// or tg:// link the button opens")

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: AnyUrl) -> AnyUrl:
        if url.scheme not in LINK_SCHEMES:
            raise ValueError("a link starts with https://, http:// or tg://")
        return url


Buttons = Annotated[list[LinkButton], Field(max_length=6)]
Variants = Annotated[dict[Locale, Text], Field(description='Wording per language: {"ru": "…"}')]


def check_content(text: str, variants: dict[str, str]) -> None:
    """Raise Invalid naming ``text`` or ``variants.<locale>`` for every wording that would not
    render (syntax, an unknown variable, a forbidden access, an empty message)."""
    errors: list[FieldError] = []
    for name, wording in [("text", text), *((f"variants.{k}", v) for k, v in variants.items())]:
        try:
            check_broadcast_template(wording)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
    if errors:
        raise Invalid(errors[0].field, errors[0].message, *errors[1:])


def wordings(variants: dict[Locale, str] | None) -> dict[str, str]:
    return {str(locale): text for locale, text in (variants or {}).items()}


def buttons_json(buttons: list[LinkButton]) -> list[dict[str, str]]:
    return [{"text": b.text, "url": str(b.url)} for b in buttons]


class TemplateIn(_In):
    name: ShortName
    text: Text = Field(description="Default wording; Jinja2 with {{ member.first_name }} …")
    variants: Variants = Field(default_factory=dict)
    buttons: Buttons = Field(default_factory=list)


class TemplatePatch(_In):
    name: ShortName | None = None
    text: Text | None = None
    variants: Variants | None = None
    buttons: Buttons | None = None


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    text: str
    variants: dict[str, str]
    buttons: list[LinkButton]
    created_at: datetime
    updated_at: datetime


class Preview(BaseModel):
    member_id: uuid.UUID
    member_name: str
    locale: str
    text: str
    buttons: list[LinkButton]


def _out(template: MessageTemplate) -> TemplateOut:
    return TemplateOut.model_validate(template, from_attributes=True)


async def _save(session: AsyncSession, template: MessageTemplate) -> None:
    name = template.name
    taken = Conflict("name", f"a template named {name!r} already exists")
    with session.no_autoflush:  # the pending rename must not be flushed by this very check
        same_name = select(MessageTemplate.id).where(
            MessageTemplate.workspace_id == template.workspace_id, MessageTemplate.name == name
        )
        if template.id is not None:
            same_name = same_name.where(MessageTemplate.id != template.id)
        clash = await session.scalar(same_name)
    if clash is not None:
        raise taken
    try:
        await session.flush()
    except IntegrityError:  # a concurrent request took the name first
        raise taken from None


async def list_templates(session: AsyncSession, actor: Actor) -> list[TemplateOut]:
    actor.require(Action.manage_events)
    rows = await session.scalars(
        select(MessageTemplate)
        .where(MessageTemplate.workspace_id == actor.workspace_id)
        .order_by(MessageTemplate.name)
    )
    return [_out(t) for t in rows]


async def get_template(
    session: AsyncSession, actor: Actor, template_id: uuid.UUID
) -> MessageTemplate:
    actor.require(Action.manage_events)
    return await get_scoped(session, MessageTemplate, actor.workspace_id, template_id, "template")


async def create_template(session: AsyncSession, actor: Actor, data: TemplateIn) -> TemplateOut:
    actor.require(Action.manage_events)
    check_content(data.text, wordings(data.variants))
    template = MessageTemplate(
        workspace_id=actor.workspace_id,
        name=data.name,
        text=data.text,
        variants=wordings(data.variants),
        buttons=buttons_json(data.buttons),
    )
    session.add(template)
    await _save(session, template)
    record_by(session, actor, "template.created", template, f"template {template.name!r}")
    return _out(template)


async def update_template(
    session: AsyncSession, actor: Actor, template_id: uuid.UUID, data: TemplatePatch
) -> TemplateOut:
    template = await get_template(session, actor, template_id)
    text = data.text if data.text is not None else template.text
    variants = wordings(data.variants) if data.variants is not None else template.variants
    check_content(text, variants)
    if data.name is not None:
        template.name = data.name
    template.text, template.variants = text, variants
    if data.buttons is not None:
        template.buttons = buttons_json(data.buttons)
    await _save(session, template)
    record_by(session, actor, "template.changed", template, f"template {template.name!r}")
    return _out(template)


async def delete_template(session: AsyncSession, actor: Actor, template_id: uuid.UUID) -> None:
    """Broadcasts made from it keep their own copy of the text."""
    template = await get_template(session, actor, template_id)
    record_by(session, actor, "template.deleted", template, f"template {template.name!r}")
    await session.execute(delete(MessageTemplate).where(MessageTemplate.id == template.id))


async def preview(
    session: AsyncSession,
    actor: Actor,
    text: str,
    variants: dict[str, str],
    buttons: list[LinkButton],
    member_id: uuid.UUID | None = None,
    audience: AudienceRule | None = None,
) -> Preview:
    """The message as one member would read it: a chosen member, or the audience's first.

    Raises Invalid for a broken wording, NotFound for a member of another workspace."""
    actor.require(Action.manage_events)
    check_content(text, variants)
    if member_id is not None:
        reader = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    else:
        query = (
            audience_query(actor.workspace_id, audience)
            if audience is not None
            else select(Member).where(Member.workspace_id == actor.workspace_id)
        )
        found = await session.scalar(query.order_by(None).order_by(Member.name).limit(1))
        if found is None:
            raise Invalid("member_id", "nobody to preview for: the audience is empty")
        reader = found
    message = render_broadcast(text, reader, variants, buttons_json(buttons))
    return Preview(
        member_id=reader.id,
        member_name=reader.name,
        locale=reader.locale,
        text=message.text,
        buttons=[LinkButton(text=t, url=AnyUrl(u)) for t, u in message.links],
    )
