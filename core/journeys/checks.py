"""Checks a journey's definition must pass before it is saved: unique step keys, every ``to``
naming a step, no loop a run could go round without ever waiting, and every template, tag,
group, role, code word and event it names present in the workspace. Each refusal names the field
(``steps[2].then``) and nothing is saved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import validate_audience
from core.errors import Invalid
from core.events.models import Event
from core.journeys.definition import (
    WAITS,
    CodeWordReceived,
    Condition,
    Definition,
    Groups,
    JoinedGroup,
    Schedule,
    Send,
    Step,
    TagAdded,
    TagRemoved,
    Tags,
    Unanswered,
    WaitForReply,
    next_keys,
)
from core.notify.models import MessageTemplate
from core.teams.models import CodeWord, Group, Role, Tag


def _graph(steps: list[Step]) -> Iterator[tuple[int, str, str | None]]:
    keys = [s.key for s in steps]
    for i, step in enumerate(steps):
        following = keys[i + 1] if i + 1 < len(keys) else None
        for field, key in next_keys(step, following):
            yield i, field, key


def check_shape(steps: list[Step]) -> None:
    """Keys unique, targets present, no loop without a wait."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.key in index:
            raise Invalid(
                f"steps[{i}].key", f"step {index[step.key]} already has the key {step.key!r}"
            )
        index[step.key] = i
    edges: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(steps))}
    for i, field, key in _graph(steps):
        if key is None:
            continue
        if key not in index:
            raise Invalid(f"steps[{i}].{field}", f"no step has the key {key!r}")
        if steps[i].type not in WAITS:
            edges[i].append((field, index[key]))
    # A cycle among steps that never wait would spin a run for ever: depth-first, three colours.
    colour = [0] * len(steps)
    path: list[int] = []

    def visit(i: int) -> None:
        colour[i] = 1
        path.append(i)
        for field, j in edges[i]:
            if colour[j] == 1:
                loop = (
                    " → ".join(steps[k].key for k in path[path.index(j) :]) + f" → {steps[j].key}"
                )
                raise Invalid(
                    f"steps[{i}].{field}",
                    f"this closes a loop with no wait in it ({loop}): add a wait step to it",
                )
            if colour[j] == 0:
                visit(j)
        path.pop()
        colour[i] = 2

    for i in range(len(steps)):
        if colour[i] == 0:
            visit(i)


def _refs(d: Definition) -> Iterator[tuple[str, type[Any], uuid.UUID]]:
    """(field, model, id) of everything the definition names."""
    t = d.trigger
    if isinstance(t, JoinedGroup):
        yield "trigger.group_id", Group, t.group_id
    if isinstance(t, TagAdded | TagRemoved):
        yield "trigger.tag_id", Tag, t.tag_id
    if isinstance(t, CodeWordReceived):
        yield "trigger.code_word_id", CodeWord, t.code_word_id
    if isinstance(t, Unanswered) and t.event_id is not None:
        yield "trigger.event_id", Event, t.event_id
    for i, step in enumerate(d.steps):
        at = f"steps[{i}]"
        message = step.message if isinstance(step, Send | WaitForReply) else None
        if message is not None and message.template_id is not None:
            yield f"{at}.message.template_id", MessageTemplate, message.template_id
        if isinstance(step, WaitForReply):
            for j, c in enumerate(step.code_words):
                yield f"{at}.code_words[{j}].code_word_id", CodeWord, c.code_word_id
        if isinstance(step, Tags | Groups):
            model = Tag if isinstance(step, Tags) else Group
            for j, ident in enumerate(step.add):
                yield f"{at}.add[{j}]", model, ident
            for j, ident in enumerate(step.remove):
                yield f"{at}.remove[{j}]", model, ident
        if isinstance(step, Condition) and step.test.ref is not None:
            named: dict[str, type[Any]] = {"tag": Tag, "group": Group, "role": Role}
            yield f"{at}.test.value", named[step.test.field], step.test.ref


_NAMES = {Tag: "tag", Group: "group", Role: "role", CodeWord: "code word", Event: "event"}


async def check_definition(session: AsyncSession, workspace_id: uuid.UUID, d: Definition) -> None:
    check_shape(d.steps)
    for field, model, ident in _refs(d):
        found = await session.scalar(
            select(model.id).where(model.id == ident, model.workspace_id == workspace_id)
        )
        if found is None:
            what = _NAMES.get(model, "template")
            raise Invalid(field, f"no {what} with this id in this workspace (deleted?)")
    if isinstance(d.trigger, Schedule):
        try:
            await validate_audience(session, workspace_id, d.trigger.audience)
        except Invalid as exc:
            raise Invalid(f"trigger.{exc.errors[0].field}", exc.errors[0].message) from exc
