"""The journey builder and funnel in the Mini App: a list of steps top to bottom, each a card
saying in plain words what it does, with its live figures; add, edit, reorder and delete steps
(core validates the whole journey, errors shown next to the field); activate, pause, copy to
another workspace the lead leads; the members waiting at a step, moved one or many at a time."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from api.deps import SessionDep
from api.routes.statistics import csv_response
from api.unit_of_work import UnitOfWork
from core.clock import utcnow
from core.errors import DomainError, Invalid
from core.insights.exports import to_csv
from core.journeys import service, stats, transfer
from core.journeys.models import JourneyStatus, RunStatus
from core.notify.templates import list_templates
from core.teams.accounts import with_account
from core.teams.models import Group, Member, Messenger, Tag, Workspace
from core.teams.self_service import actor_of, leads_of
from webapp.charts import funnel
from webapp.console import Console, LeadConsole, field_errors, undo
from webapp.journey_steps import (
    KINDS,
    Names,
    describe,
    describe_trigger,
    error_field,
    form_of,
    new_key,
    step_choices,
    step_from_form,
)
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/journeys", include_in_schema=False)
WAITING_LISTED = 200
TRIGGER_KINDS = (
    "joined_group",
    "tag_added",
    "tag_removed",
    "joined_workspace",
    "inactive",
    "signal",
    "manual",
)


async def _names(session: SessionDep, lead: Console) -> Names:
    ws = lead.member.workspace_id
    tags = list(
        await session.execute(
            select(Tag.id, Tag.name).where(Tag.workspace_id == ws).order_by(Tag.name)
        )
    )
    groups = list(
        await session.execute(
            select(Group.id, Group.name).where(Group.workspace_id == ws).order_by(Group.name)
        )
    )
    templates = await list_templates(session, lead.actor)
    return Names(
        tags={str(i): n for i, n in tags},
        groups={str(i): n for i, n in groups},
        templates={str(t.id): t.name for t in templates},
    )


def _definition(journey: service.JourneyOut, steps: list[dict[str, Any]]) -> service.JourneyUpdate:
    return service.JourneyUpdate.model_validate(
        {
            "name": journey.name,
            "trigger": journey.trigger,
            "reentry": journey.reentry.value,
            "steps": steps,
            "stuck_after_hours": journey.stuck_after_hours,
            "version": journey.version,
        }
    )


async def _builder(
    request: Request,
    session: SessionDep,
    lead: Console,
    journey_id: uuid.UUID,
    *,
    editing: int | None = None,
    draft: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    copy_plan: transfer.ImportOut | None = None,
    copy_to: str = "",
    status: int = 200,
) -> HTMLResponse:
    journey = await service.view(
        session, await service.get_journey(session, lead.actor, journey_id)
    )
    figures = await stats.journey_stats(session, lead.actor, journey_id, utcnow())
    by_key = {s.key: s for s in figures.steps}
    names = await _names(session, lead)
    words = lead.words
    steps = journey.steps
    cards = [
        {
            "index": i,
            "step": step,
            "said": describe(step, i, steps, names, words),
            "form": draft if editing == i and draft is not None else form_of(step),
            "errors": errors if editing == i else {},
            "figures": by_key.get(step["key"]),
        }
        for i, step in enumerate(steps)
    ]
    chart = funnel(
        words["j_funnel"],
        [f"{i + 1}. {s.title or words['kind_' + s.type]}" for i, s in enumerate(figures.steps)],
        [s.reached for s in figures.steps],
        figures.entered,
        [_duration(s.median_seconds) for s in figures.steps],
    )
    context = lead.context(
        journey=journey,
        trigger_said=describe_trigger(journey.trigger, names, words),
        cards=cards,
        kinds=KINDS,
        names=names,
        new_form=draft if editing == -1 and draft is not None else {"kind": "send"},
        new_errors=errors if editing == -1 else {},
        figures=figures,
        chart=chart,
        stuck=[m for s in figures.steps for m in s.stuck_members],
        notice=notice,
        failed=status >= 400,
        workspaces=await _other_workspaces(session, lead),
        copy_plan=copy_plan,
        copy_to=copy_to,
        step_choices=step_choices(steps, words),
    )
    return _page(request, "journey.html", context, status)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    if minutes >= 48 * 60:
        return f"{minutes / 1440:.1f} d"
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


async def _other_workspaces(session: SessionDep, lead: Console) -> list[tuple[uuid.UUID, str]]:
    """Workspaces where the same Telegram account is an owner or lead (copy targets)."""
    account = lead.member.account_id(Messenger.telegram)
    if account is None:
        return []
    others = await session.scalars(
        select(Member).where(
            with_account(Messenger.telegram, account),
            Member.workspace_id != lead.member.workspace_id,
        )
    )
    found = []
    for other in others:
        if await leads_of(session, other):
            name = await session.scalar(
                select(Workspace.name).where(Workspace.id == other.workspace_id)
            )
            found.append((other.workspace_id, name or ""))
    return sorted(found, key=lambda w: w[1])


@router.get("", response_class=HTMLResponse)
async def journeys_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    return await _list(request, session, lead)


async def _list(
    request: Request,
    session: SessionDep,
    lead: Console,
    new: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    journeys = await service.list_journeys(session, lead.actor)
    names = await _names(session, lead)
    context = lead.context(
        journeys=[(j, describe_trigger(j.trigger, names, lead.words)) for j in journeys],
        names=names,
        trigger_kinds=TRIGGER_KINDS,
        new=new or {"trigger": "joined_group", "reentry": "once"},
        errors=errors or {},
    )
    return _page(request, "journeys.html", context, status)


def _trigger(form: FormData) -> dict[str, Any]:
    kind = str(form.get("trigger", ""))
    trigger: dict[str, Any] = {"type": kind}
    if kind == "joined_group":
        trigger["group_id"] = form.get("group_id") or None
    elif kind in ("tag_added", "tag_removed"):
        trigger["tag_id"] = form.get("tag_id") or None
    elif kind == "inactive":
        trigger["days"] = form.get("days") or None
    elif kind == "signal":
        trigger["name"] = form.get("signal") or None
        if form.get("op") and str(form.get("value", "")).strip():
            trigger["op"] = form.get("op")
            trigger["value"] = form.get("value")
    return trigger


@router.post("", response_class=HTMLResponse)
async def create(request: Request, session: SessionDep, lead: LeadConsole) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items()}
    try:
        made = await service.create_journey(
            session,
            lead.actor,
            service.JourneyIn.model_validate(
                {
                    "name": values.get("name", ""),
                    "trigger": _trigger(form),
                    "reentry": values.get("reentry", "once"),
                    "steps": [],
                }
            ),
        )
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        errors = field_errors(exc, {"name": "name", "trigger": "trigger", "reentry": "reentry"})
        return await _list(request, session, lead, values, errors, status=422)
    response = await _builder(request, session, lead, made.id)
    response.headers["HX-Push-Url"] = f"/app/journeys/{made.id}"
    return response


@router.get("/{journey_id}", response_class=HTMLResponse)
async def builder(
    request: Request,
    journey_id: uuid.UUID,
    session: SessionDep,
    lead: LeadConsole,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """The builder; ``kind`` picks the fields of the "add a step" form."""
    if kind is not None and kind in KINDS:
        return await _builder(request, session, lead, journey_id, editing=-1, draft={"kind": kind})
    return await _builder(request, session, lead, journey_id)


async def _save_steps(
    request: Request,
    session: SessionDep,
    lead: Console,
    journey_id: uuid.UUID,
    steps: list[dict[str, Any]],
    editing: int,
    draft: dict[str, str],
) -> HTMLResponse:
    """Save the whole journey with ``steps``; on refusal nothing is written and the error is
    shown next to the field of the step being edited (``editing``; -1 the new step's form)."""
    journey = await service.view(
        session, await service.get_journey(session, lead.actor, journey_id)
    )
    try:
        await service.update_journey(
            session, lead.actor, journey_id, _definition(journey, steps), utcnow()
        )
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        index = len(steps) - 1 if editing == -1 else editing
        errors = _step_errors(exc, index)
        return await _builder(
            request,
            session,
            lead,
            journey_id,
            editing=editing,
            draft=draft,
            errors=errors,
            status=422,
        )
    return await _builder(request, session, lead, journey_id)


def _step_errors(exc: DomainError | ValidationError, index: int) -> dict[str, str]:
    """Core's and pydantic's errors as {form field: message} for the step at ``index``."""
    pairs: list[tuple[str, str]]
    if isinstance(exc, ValidationError):
        # A step's location names its kind after the index (the union's tag): steps.3.wait.minutes
        pairs = [
            (
                ".".join(str(p) for p in e["loc"] if str(p) not in KINDS),
                str(e["msg"]).removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
    elif isinstance(exc, Invalid):
        pairs = [(e.field, e.message) for e in exc.errors]
    else:
        pairs = [(getattr(exc, "field", "") or "", exc.detail)]
    out: dict[str, str] = {}
    for where, message in pairs:
        out.setdefault(error_field(where, index), message)
    return out


@router.post("/{journey_id}/steps", response_class=HTMLResponse)
async def add_step(
    request: Request, journey_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    form = await request.form()
    draft = {k: str(v) for k, v in form.items()}
    journey = await service.view(
        session, await service.get_journey(session, lead.actor, journey_id)
    )
    key = new_key(str(form.get("kind", "")), journey.steps)
    step = step_from_form(str(form.get("kind", "")), key, form)
    return await _save_steps(request, session, lead, journey_id, [*journey.steps, step], -1, draft)


@router.post("/{journey_id}/steps/{index}", response_class=HTMLResponse)
async def edit_step(
    request: Request, journey_id: uuid.UUID, index: int, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    form = await request.form()
    draft = {k: str(v) for k, v in form.items()}
    journey = await service.view(
        session, await service.get_journey(session, lead.actor, journey_id)
    )
    if not 0 <= index < len(journey.steps):
        raise Invalid("index", "no such step: the journey changed meanwhile; reload it")
    steps = list(journey.steps)
    old = steps[index]
    steps[index] = step_from_form(str(old["type"]), str(old["key"]), form)
    return await _save_steps(request, session, lead, journey_id, steps, index, draft)


@router.post("/{journey_id}/steps/{index}/{how}", response_class=HTMLResponse)
async def reorder_step(
    request: Request,
    journey_id: uuid.UUID,
    index: int,
    how: Annotated[str, "up, down or delete"],
    session: SessionDep,
    lead: LeadConsole,
) -> HTMLResponse:
    journey = await service.view(
        session, await service.get_journey(session, lead.actor, journey_id)
    )
    steps = list(journey.steps)
    if not 0 <= index < len(steps) or how not in ("up", "down", "delete"):
        raise Invalid("index", "no such step: the journey changed meanwhile; reload it")
    if how == "delete":
        del steps[index]
    else:
        other = index - 1 if how == "up" else index + 1
        if 0 <= other < len(steps):
            steps[index], steps[other] = steps[other], steps[index]
    return await _save_steps(
        request, session, lead, journey_id, steps, index, form_of(journey.steps[index])
    )


@router.post("/{journey_id}/copy", response_class=HTMLResponse)
async def copy(
    request: Request, journey_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    """Copy into another workspace this lead leads: first what it will create there, then (with
    ``confirm``) the copy, as a draft, acting as the lead's member in that workspace."""
    form = await request.form()
    allowed = dict(await _other_workspaces(session, lead))
    try:
        target = uuid.UUID(str(form.get("target", "")))
    except ValueError:
        target = uuid.UUID(int=0)
    if target not in allowed:
        raise Invalid("workspace", "you do not lead that workspace")
    account = lead.member.account_id(Messenger.telegram)
    there = await session.scalar(
        select(Member).where(
            with_account(Messenger.telegram, account or ""), Member.workspace_id == target
        )
    )
    assert there is not None
    exported = await transfer.export_journey(session, lead.actor, journey_id)
    confirm = form.get("confirm") == "1"
    plan = await transfer.import_journey(
        session,
        await actor_of(session, there),
        transfer.ImportIn(journey=exported, dry_run=not confirm),
    )
    if confirm:
        notice = lead.words["j_copied"].format(workspace=allowed[target])
        return await _builder(request, session, lead, journey_id, notice=notice)
    return await _builder(request, session, lead, journey_id, copy_plan=plan, copy_to=str(target))


@router.post("/{journey_id}/{action}", response_class=HTMLResponse)
async def set_status(
    request: Request, journey_id: uuid.UUID, action: str, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    wanted = {"activate": JourneyStatus.active, "pause": JourneyStatus.paused}.get(action)
    if wanted is None:
        raise Invalid("action", "activate or pause")
    try:
        await service.set_status(session, lead.actor, journey_id, wanted, utcnow())
    except DomainError as exc:
        await undo(session, lead)
        return await _builder(request, session, lead, journey_id, notice=exc.detail, status=422)
    return await _builder(request, session, lead, journey_id)


@router.get("/{journey_id}/stats.csv", response_class=Response)
async def stats_csv(journey_id: uuid.UUID, session: SessionDep, lead: LeadConsole) -> Response:
    figures = await stats.journey_stats(session, lead.actor, journey_id, utcnow())
    return csv_response(
        to_csv(stats.CSV_HEADER, stats.csv_rows(figures)), f"journey-{journey_id}.csv"
    )


@router.get("/{journey_id}/at/{key}", response_class=HTMLResponse)
async def waiting(
    request: Request, journey_id: uuid.UUID, key: str, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    return await _waiting(request, session, lead, journey_id, key)


async def _waiting(
    request: Request,
    session: SessionDep,
    lead: Console,
    journey_id: uuid.UUID,
    key: str,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    journey = await service.view(
        session, await service.get_journey(session, lead.actor, journey_id)
    )
    found = await service.list_runs(
        session,
        lead.actor,
        journey_id,
        service.RunFilter(status=RunStatus.active, step=key, limit=WAITING_LISTED),
        utcnow(),
    )
    step = next((s for s in journey.steps if s["key"] == key), None)
    title = (step or {}).get("title") or (lead.words["kind_" + step["type"]] if step else key)
    context = lead.context(
        journey=journey,
        key=key,
        title=title,
        runs=found.items,
        total=found.total,
        notice=notice,
        failed=status >= 400,
        step_choices=step_choices(journey.steps, lead.words),
    )
    return _page(request, "journey_waiting.html", context, status)


@router.post("/{journey_id}/at/{key}/move", response_class=HTMLResponse)
async def move(
    request: Request, journey_id: uuid.UUID, key: str, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    """Move the ticked members (one or many) to a step, or out; each move is audited."""
    form = await request.form()
    run_ids = form.getlist("run_id")
    to = str(form.get("to", "")) or None
    if not run_ids:
        return await _waiting(
            request, session, lead, journey_id, key, lead.words["j_pick_someone"], 422
        )
    try:
        for run_id in run_ids:
            await service.move_run(
                session,
                lead.actor,
                journey_id,
                uuid.UUID(str(run_id)),
                service.MoveIn(to=to, why="moved in the Mini App"),
                utcnow(),
            )
    except (DomainError, ValidationError, ValueError) as exc:
        await undo(session, lead)
        message = exc.detail if isinstance(exc, DomainError) else str(exc)
        return await _waiting(request, session, lead, journey_id, key, message, 422)
    moved = lead.words["j_moved"].format(n=len(run_ids))
    return await _waiting(request, session, lead, journey_id, key, moved)
