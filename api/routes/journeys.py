"""Journeys: automatic chains of messages, waits, questions and branches (docs: README
"Journeys"). Definitions, their runs, moves by hand, statistics and copies."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ActorDep, SessionDep
from api.routes.statistics import csv_response
from api.unit_of_work import UnitOfWork
from core.clock import utcnow
from core.insights.exports import to_csv
from core.journeys import service, stats, transfer
from core.journeys.models import JourneyStatus
from core.paging import Page

router = APIRouter(route_class=UnitOfWork, prefix="/journeys", tags=["journeys"])


@router.post("", status_code=201)
async def create_journey(
    data: service.JourneyIn, actor: ActorDep, session: SessionDep
) -> service.JourneyOut:
    """Save a journey as a draft. Every step has a stable ``key``: statistics and runs are kept
    by it, so steps may be reordered and reworded later. Refused (422, naming the field) when a
    step names a template, tag, group, role or code word that is not in this workspace, a
    ``to`` names no step, or steps could loop without a wait."""
    return await service.create_journey(session, actor, data)


@router.get("")
async def list_journeys(actor: ActorDep, session: SessionDep) -> list[service.JourneyOut]:
    return await service.list_journeys(session, actor)


@router.get("/{journey_id}")
async def get_journey(
    journey_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> service.JourneyOut:
    return await service.view(session, await service.get_journey(session, actor, journey_id))


@router.put("/{journey_id}")
async def update_journey(
    journey_id: uuid.UUID, data: service.JourneyUpdate, actor: ActorDep, session: SessionDep
) -> service.JourneyOut:
    """Save a new definition, sent with the ``version`` it was read at; 409 (saying what
    changed) if someone saved another meanwhile. Members at a deleted step move on to the step
    that followed it."""
    return await service.update_journey(session, actor, journey_id, data, utcnow())


async def _status(
    journey_id: uuid.UUID, actor: ActorDep, session: SessionDep, status: JourneyStatus
) -> service.JourneyOut:
    return await service.set_status(session, actor, journey_id, status, utcnow())


@router.post("/{journey_id}/activate")
async def activate(
    journey_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> service.JourneyOut:
    """Members enter on its trigger; runs move on."""
    return await _status(journey_id, actor, session, JourneyStatus.active)


@router.post("/{journey_id}/pause")
async def pause(journey_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> service.JourneyOut:
    """Nobody enters and nobody moves on until it is activated again; messages already queued
    still go."""
    return await _status(journey_id, actor, session, JourneyStatus.paused)


@router.delete("/{journey_id}")
async def archive(
    journey_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> service.JourneyOut:
    """Archive: every member inside is taken out; statistics stay."""
    return await _status(journey_id, actor, session, JourneyStatus.archived)


@router.get("/{journey_id}/runs")
async def list_runs(
    journey_id: uuid.UUID,
    flt: Annotated[service.RunFilter, Query()],
    actor: ActorDep,
    session: SessionDep,
) -> Page[service.RunOut]:
    """Runs, longest at their step first; filter by status, step, member or ``stuck``."""
    return await service.list_runs(session, actor, journey_id, flt, utcnow())


@router.post("/{journey_id}/runs", status_code=201)
async def enter_members(
    journey_id: uuid.UUID, data: service.EnterIn, actor: ActorDep, session: SessionDep
) -> dict[str, int]:
    """Put members in by hand (at the first step, or ``at`` another); the journey's re-entry
    policy still holds. Returns how many entered."""
    return {"entered": await service.enter_members(session, actor, journey_id, data, utcnow())}


@router.get("/{journey_id}/runs/{run_id}/log")
async def run_log(
    journey_id: uuid.UUID, run_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> list[service.LogOut]:
    """Everything that happened in the run: steps, branches, messages (with their job), moves."""
    return await service.run_log(session, actor, journey_id, run_id)


@router.post("/{journey_id}/runs/{run_id}/move")
async def move_run(
    journey_id: uuid.UUID,
    run_id: uuid.UUID,
    data: service.MoveIn,
    actor: ActorDep,
    session: SessionDep,
) -> service.RunOut:
    """Put the member at another step (``to``), or take them out (``to``: null). Audited with
    who did it and why."""
    return await service.move_run(session, actor, journey_id, run_id, data, utcnow())


@router.get("/{journey_id}/stats")
async def journey_stats(
    journey_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> stats.JourneyStats:
    """Per step: reached, waiting, went on, left, failed, conversion from entry, median time at
    the step, who is stuck; per day: entered, finished, left, failed."""
    return await stats.journey_stats(session, actor, journey_id, utcnow(), days)


@router.get("/{journey_id}/stats.csv", response_class=Response)
async def journey_stats_csv(
    journey_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> Response:
    report = await stats.journey_stats(session, actor, journey_id, utcnow())
    body = to_csv(stats.CSV_HEADER, stats.csv_rows(report))
    return csv_response(body, f"journey-{journey_id}.csv")


@router.get("/{journey_id}/export")
async def export_journey(
    journey_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> transfer.JourneyExport:
    """The journey as JSON, with the names of the tags, groups, roles, code words, events and
    templates it refers to, for POST /journeys/import here or in another workspace."""
    return await transfer.export_journey(session, actor, journey_id)


@router.post("/import")
async def import_journey(
    data: transfer.ImportIn, actor: ActorDep, session: SessionDep
) -> transfer.ImportOut:
    """Import an exported journey as a draft. With ``dry_run`` (the default) only reports what
    it would create (tags, groups, roles, templates matched by name; code words and events must
    exist); send it again with ``dry_run: false`` to create them and the journey."""
    return await transfer.import_journey(session, actor, data)
