"""Copying a journey: exported as JSON with the names of everything it refers to, imported into
the same or another workspace with those matched by name. An import first says what it would
create (tags, groups, roles, templates) and creates it only when asked to."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Invalid
from core.events.models import Event
from core.journeys.service import JourneyIn, JourneyName, JourneyOut, create_journey, get_journey
from core.notify.models import MessageTemplate
from core.teams.models import CodeWord, Group, Role, Tag
from core.teams.permissions import Action, Actor

FORMAT = "vestnik.journey"
VERSION = 1


class TemplateCopy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    text: str
    variants: dict[str, str] = Field(default_factory=dict)
    buttons: list[dict[str, str]] = Field(default_factory=list)


class Refs(BaseModel):
    """By id (as in the steps): the name each had where the journey was exported."""

    model_config = ConfigDict(extra="forbid")

    tags: dict[uuid.UUID, str] = Field(default_factory=dict)
    groups: dict[uuid.UUID, str] = Field(default_factory=dict)
    roles: dict[uuid.UUID, str] = Field(default_factory=dict)
    code_words: dict[uuid.UUID, str] = Field(default_factory=dict)
    events: dict[uuid.UUID, str] = Field(default_factory=dict)
    templates: dict[uuid.UUID, TemplateCopy] = Field(default_factory=dict)


class JourneyExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["vestnik.journey"]
    version: Annotated[int, Field(ge=1)]
    name: str
    trigger: dict[str, Any]
    reentry: str
    stuck_after_hours: int
    steps: list[dict[str, Any]]
    refs: Refs


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    journey: JourneyExport
    name: JourneyName | None = Field(default=None, description="Save under this name instead")
    dry_run: bool = Field(default=True, description="Only say what would be created")


class ImportOut(BaseModel):
    will_create: dict[str, list[str]] = Field(
        description="By kind: the names that do not exist here"
    )
    matched: dict[str, list[str]]
    journey: JourneyOut | None = Field(
        description="The imported journey (a draft); null on a dry run"
    )


def _ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_ids(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_ids(v) for v in value)) if value else set()
    if isinstance(value, str):
        try:
            return {str(uuid.UUID(value))}
        except ValueError:
            return set()
    return set()


def _swap(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _swap(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, ids) for v in value]
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


async def export_journey(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID
) -> JourneyExport:
    journey = await get_journey(session, actor, journey_id)
    used = {uuid.UUID(i) for i in _ids([journey.trigger, journey.steps])}
    ws = actor.workspace_id
    refs = Refs()
    for model, name, into in (
        (Tag, Tag.name, refs.tags),
        (Group, Group.name, refs.groups),
        (Role, Role.name, refs.roles),
        (CodeWord, CodeWord.phrase, refs.code_words),
        (Event, Event.title, refs.events),
    ):
        for ident, label in await session.execute(
            select(model.id, name).where(model.workspace_id == ws, model.id.in_(used))
        ):
            into[ident] = label
    for t in await session.scalars(
        select(MessageTemplate).where(
            MessageTemplate.workspace_id == ws, MessageTemplate.id.in_(used)
        )
    ):
        refs.templates[t.id] = TemplateCopy(
            name=t.name, text=t.text, variants=t.variants, buttons=t.buttons
        )
    return JourneyExport(
        format=FORMAT,
        version=VERSION,
        name=journey.name,
        trigger=journey.trigger,
        reentry=journey.reentry.value,
        stuck_after_hours=journey.stuck_after_hours,
        steps=journey.steps,
        refs=refs,
    )


async def import_journey(session: AsyncSession, actor: Actor, data: ImportIn) -> ImportOut:
    actor.require(Action.manage_people)
    src = data.journey
    if src.version > VERSION:
        raise Invalid(
            "journey.version",
            f"exported by a newer vestnik (format version {src.version}); this one reads "
            f"version {VERSION}: upgrade it first",
        )
    ws = actor.workspace_id
    ids: dict[str, str] = {}
    will: dict[str, list[str]] = {}
    matched: dict[str, list[str]] = {}
    creators: list[Any] = []
    named = (
        ("tags", Tag, Tag.name, src.refs.tags),
        ("groups", Group, Group.name, src.refs.groups),
        ("roles", Role, Role.name, src.refs.roles),
    )
    for kind, model, column, refs in named:
        for old, name in refs.items():
            found = await session.scalar(
                select(model.id).where(model.workspace_id == ws, func.lower(column) == name.lower())
            )
            if found is not None:
                ids[str(old)] = str(found)
                matched.setdefault(kind, []).append(name)
            else:
                new = uuid.uuid4()
                ids[str(old)] = str(new)
                will.setdefault(kind, []).append(name)
                creators.append(model(id=new, workspace_id=ws, name=name))
    for old, phrase in src.refs.code_words.items():
        found = await session.scalar(
            select(CodeWord.id).where(CodeWord.workspace_id == ws, CodeWord.phrase == phrase)
        )
        if found is None:
            raise Invalid(
                "journey.refs.code_words", f"no code word {phrase!r} here: create it first"
            )
        ids[str(old)] = str(found)
        matched.setdefault("code_words", []).append(phrase)
    for old, title in src.refs.events.items():
        found = await session.scalar(
            select(Event.id).where(
                Event.workspace_id == ws, Event.title == title, Event.deleted_at.is_(None)
            )
        )
        if found is None:
            raise Invalid("journey.refs.events", f"no event titled {title!r} here: create it first")
        ids[str(old)] = str(found)
        matched.setdefault("events", []).append(title)
    for old, t in src.refs.templates.items():
        found = await session.scalar(
            select(MessageTemplate.id).where(
                MessageTemplate.workspace_id == ws, MessageTemplate.name == t.name
            )
        )
        if found is not None:
            ids[str(old)] = str(found)
            matched.setdefault("templates", []).append(t.name)
        else:
            new = uuid.uuid4()
            ids[str(old)] = str(new)
            will.setdefault("templates", []).append(t.name)
            creators.append(
                MessageTemplate(
                    id=new,
                    workspace_id=ws,
                    name=t.name,
                    text=t.text,
                    variants=t.variants,
                    buttons=t.buttons,
                )
            )
    unknown = _ids([src.trigger, src.steps]) - set(ids)
    if unknown:
        raise Invalid(
            "journey.refs", f"the steps name {sorted(unknown)[0]}, which refs does not list"
        )
    try:
        definition = JourneyIn.model_validate(
            {
                "name": data.name or src.name,
                "trigger": _swap(src.trigger, ids),
                "reentry": src.reentry,
                "stuck_after_hours": src.stuck_after_hours,
                "steps": _swap(src.steps, ids),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"journey.{where}", first["msg"]) from None
    if data.dry_run:
        return ImportOut(will_create=will, matched=matched, journey=None)
    session.add_all(creators)
    await session.flush()
    journey = await create_journey(session, actor, definition)
    return ImportOut(will_create=will, matched=matched, journey=journey)
