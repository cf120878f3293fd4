"""Journeys as leads manage them: create, edit (one version at a time), activate, pause, archive;
runs listed, members put in, moved or taken out by hand (audited). Callers commit."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by
from core.errors import Conflict, Invalid
from core.journeys import runs
from core.journeys.checks import check_definition
from core.journeys.definition import Definition
from core.journeys.models import Journey, JourneyLog, JourneyRun, JourneyStatus, Reentry, RunStatus
from core.paging import Page, PageParams
from core.scoping import get_scoped
from core.teams.models import Member
from core.teams.permissions import Action, Actor

JourneyName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]

EXAMPLE: dict[str, Any] = {
    "name": "Course onboarding",
    "trigger": {"type": "joined_group", "group_id": "6f1c4d0e-8a55-4c3b-9f62-3f0f0c1f9a10"},
    "reentry": "once",
    "steps": [
        {
            "key": "welcome",
            "type": "send",
            "message": {"text": "Welcome, {{ member.first_name }}!"},
        },
        {"key": "morning", "type": "wait", "preferred_time": True},
        {
            "key": "ask",
            "type": "wait_for_reply",
            "message": {"text": "Have you opened lesson 1?"},
            "choices": [{"label": "Yes", "to": "started"}],
            "timeout_minutes": 4320,
            "on_timeout": "miss_you",
        },
        {"key": "miss_you", "type": "send", "message": {"text": "We miss you!"}},
        {
            "key": "still_silent",
            "type": "wait_for_reply",
            "code_words": [],
            "signals": [{"name": "lesson_done", "to": "done"}],
            "timeout_minutes": 5760,
        },
        {"key": "tell_lead", "type": "alert", "reason": "silent for a week after joining"},
        {"key": "stop", "type": "end"},
        {"key": "started", "type": "tags", "add": ["0d9a3f7e-4b1c-4e55-8a3b-2d6c9f1e7a22"]},
        {"key": "done", "type": "end"},
    ],
}


class JourneyIn(Definition):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    name: JourneyName


class JourneyUpdate(JourneyIn):
    """The whole definition again, with the ``version`` it was read at: an edit made against an
    older version is refused (409) and says what changed since."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[int, Field(ge=1)]


class JourneyOut(BaseModel):
    id: uuid.UUID
    name: str
    status: JourneyStatus
    trigger: dict[str, Any]
    reentry: Reentry
    steps: list[dict[str, Any]]
    stuck_after_hours: int
    version: int
    updated_by: str
    updated_at: datetime
    inside: int = Field(description="Members in the journey now")
    webhook_secret: str = Field(description="Signs the webhook steps' calls (HMAC-SHA256)")


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    member_id: uuid.UUID
    member_name: str = ""
    status: RunStatus
    step_key: str | None
    step_since: datetime
    waiting: bool
    next_at: datetime | None
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None


def _run_out(run: JourneyRun, member_name: str) -> RunOut:
    return RunOut(
        id=run.id,
        member_id=run.member_id,
        member_name=member_name,
        status=run.status,
        step_key=run.step_key,
        step_since=run.step_since,
        waiting=run.stage == "wait",
        next_at=run.next_at,
        entered_at=run.entered_at,
        ended_at=run.ended_at,
        end_reason=run.end_reason,
    )


class RunFilter(PageParams):
    status: RunStatus | None = None
    step: Annotated[str, StringConstraints(max_length=64)] | None = None
    member_id: uuid.UUID | None = None
    stuck: bool = Field(
        default=False,
        description="Only runs at their step longer than the journey's stuck threshold",
    )


class MoveIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"to": "ask"}, {"to": None, "why": "left the course"}]},
    )

    to: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        description="The step's key, or null to take the member out"
    )
    why: Annotated[str, StringConstraints(max_length=500)] = ""


class EnterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=10_000)]
    at: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="Start at this step instead of the first"
    )


class LogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    step_key: str | None
    action: str
    detail: dict[str, Any]
    job_id: uuid.UUID | None
    actor: str | None


def _dump(d: Definition) -> dict[str, Any]:
    return d.model_dump(mode="json", by_alias=True, exclude_none=True)


async def _inside(session: AsyncSession, journey_id: uuid.UUID) -> int:
    return (
        await session.scalar(
            select(func.count()).where(
                JourneyRun.journey_id == journey_id, JourneyRun.status == RunStatus.active.value
            )
        )
        or 0
    )


async def view(session: AsyncSession, journey: Journey) -> JourneyOut:
    return JourneyOut(
        id=journey.id,
        name=journey.name,
        status=journey.status,
        trigger=journey.trigger,
        reentry=journey.reentry,
        steps=journey.steps,
        stuck_after_hours=journey.stuck_after_hours,
        version=journey.version,
        updated_by=journey.updated_by,
        updated_at=journey.updated_at,
        inside=await _inside(session, journey.id),
        webhook_secret=journey.webhook_secret,
    )


async def _free_name(
    session: AsyncSession, actor: Actor, name: str, other: uuid.UUID | None
) -> None:
    taken = await session.scalar(
        select(Journey.id).where(
            Journey.workspace_id == actor.workspace_id,
            func.lower(Journey.name) == name.lower(),
            Journey.id != (other or uuid.UUID(int=0)),
        )
    )
    if taken is not None:
        raise Conflict("name", f"a journey named {name!r} already exists")


async def create_journey(session: AsyncSession, actor: Actor, data: JourneyIn) -> JourneyOut:
    """Saved as a draft: nobody enters until it is activated."""
    actor.require(Action.manage_people)
    await _free_name(session, actor, data.name, None)
    await check_definition(session, actor.workspace_id, data)
    dumped = _dump(data)
    journey = Journey(
        id=uuid.uuid4(),
        workspace_id=actor.workspace_id,
        name=data.name,
        status=JourneyStatus.draft,
        trigger=dumped["trigger"],
        reentry=Reentry(data.reentry),
        steps=dumped["steps"],
        stuck_after_hours=data.stuck_after_hours,
        webhook_secret=secrets.token_hex(32),
        version=1,
        updated_by=actor.label[:200],
    )
    session.add(journey)
    await session.flush()
    record_by(session, actor, "journey.created", journey, f"journey {journey.name!r}")
    return await view(session, journey)


async def get_journey(session: AsyncSession, actor: Actor, journey_id: uuid.UUID) -> Journey:
    actor.require(Action.read)
    return await get_scoped(session, Journey, actor.workspace_id, journey_id, "journey")


async def list_journeys(session: AsyncSession, actor: Actor) -> list[JourneyOut]:
    actor.require(Action.read)
    rows = await session.scalars(
        select(Journey).where(Journey.workspace_id == actor.workspace_id).order_by(Journey.name)
    )
    return [await view(session, j) for j in rows]


def _changes(journey: Journey, data: JourneyUpdate, dumped: dict[str, Any]) -> list[str]:
    now = {
        "name": data.name,
        "trigger": dumped["trigger"],
        "reentry": data.reentry,
        "steps": dumped["steps"],
        "stuck_after_hours": data.stuck_after_hours,
    }
    was = {
        "name": journey.name,
        "trigger": journey.trigger,
        "reentry": journey.reentry.value,
        "steps": journey.steps,
        "stuck_after_hours": journey.stuck_after_hours,
    }
    return [k for k in now if now[k] != was[k]]


async def update_journey(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID, data: JourneyUpdate, now: datetime
) -> JourneyOut:
    """Save a new definition. Runs at a step that is gone move on to the step that followed it
    (or finish); runs elsewhere carry on under the new steps as they reach them."""
    actor.require(Action.manage_people)
    journey = await session.scalar(
        select(Journey)
        .where(Journey.id == journey_id, Journey.workspace_id == actor.workspace_id)
        .with_for_update()
    )
    if journey is None:
        await get_scoped(session, Journey, actor.workspace_id, journey_id, "journey")
        raise AssertionError  # pragma: no cover - get_scoped raised
    if journey.status == JourneyStatus.archived:
        raise Conflict("status", "an archived journey cannot be changed; copy it instead")
    dumped = _dump(data)
    if data.version != journey.version:
        raise Conflict(
            "version",
            f"the journey was changed to version {journey.version} by {journey.updated_by} at "
            f"{journey.updated_at.isoformat()} (you edited version {data.version}); what "
            f"differs from yours now: {', '.join(_changes(journey, data, dumped)) or 'nothing'}. "
            "Reload it and apply your change again",
        )
    await _free_name(session, actor, data.name, journey.id)
    if not data.steps and journey.status != JourneyStatus.draft:
        raise Invalid("steps", "only a draft may have no steps; pause is not enough")
    await check_definition(session, actor.workspace_id, data)
    changed = _changes(journey, data, dumped)
    old_keys = [str(s["key"]) for s in journey.steps]
    new_keys = {s.key for s in data.steps}
    gone = [k for k in old_keys if k not in new_keys]
    for key in gone:
        # The first surviving step after it in the old order: where its members go on.
        after = old_keys[old_keys.index(key) + 1 :]
        to = next((k for k in after if k in new_keys), None)
        stranded = await session.scalars(
            select(JourneyRun)
            .where(
                JourneyRun.journey_id == journey.id,
                JourneyRun.status == RunStatus.active.value,
                JourneyRun.step_key == key,
            )
            .with_for_update()
        )
        for run in stranded:
            await runs.move(session, run, to, now, actor.label, f"step {key!r} was deleted")
    journey.name = data.name
    journey.trigger = dumped["trigger"]
    journey.reentry = Reentry(data.reentry)
    journey.steps = dumped["steps"]
    journey.stuck_after_hours = data.stuck_after_hours
    journey.version += 1
    journey.updated_by = actor.label[:200]
    journey.updated_at = now
    record_by(
        session,
        actor,
        "journey.changed",
        journey,
        f"journey {journey.name!r}: {', '.join(changed) or 'saved'}",
    )
    await session.flush()
    return await view(session, journey)


async def set_status(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID, status: JourneyStatus, now: datetime
) -> JourneyOut:
    """Activate (runs move on, triggers enter), pause (everything waits where it is) or archive
    (every run is taken out; final)."""
    actor.require(Action.manage_people)
    journey = await get_scoped(session, Journey, actor.workspace_id, journey_id, "journey")
    if journey.status == JourneyStatus.archived:
        raise Conflict("status", "the journey is archived")
    if status == JourneyStatus.active and not journey.steps:
        raise Invalid("steps", "a journey needs at least one step")
    if status == JourneyStatus.archived:
        await runs.take_out_at(session, journey, [], now, actor.label, "the journey was archived")
    journey.status = status
    journey.version += 1
    journey.updated_by = actor.label[:200]
    journey.updated_at = now
    record_by(session, actor, f"journey.{status.value}", journey, f"journey {journey.name!r}")
    await session.flush()
    return await view(session, journey)


async def list_runs(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID, flt: RunFilter, now: datetime
) -> Page[RunOut]:
    journey = await get_journey(session, actor, journey_id)
    where = [JourneyRun.journey_id == journey.id]
    if flt.status is not None:
        where.append(JourneyRun.status == flt.status.value)
    if flt.step is not None:
        where.append(JourneyRun.step_key == flt.step)
    if flt.member_id is not None:
        where.append(JourneyRun.member_id == flt.member_id)
    if flt.stuck:
        where += [
            JourneyRun.status == RunStatus.active.value,
            JourneyRun.step_since < now - timedelta(hours=journey.stuck_after_hours),
        ]
    total = await session.scalar(select(func.count()).select_from(JourneyRun).where(*where)) or 0
    rows = await session.execute(
        select(JourneyRun, Member.name)
        .join(Member, Member.id == JourneyRun.member_id)
        .where(*where)
        .order_by(JourneyRun.step_since, JourneyRun.id)
        .limit(flt.limit)
        .offset(flt.offset)
    )
    items = [_run_out(run, name) for run, name in rows.all()]
    return Page(items=items, total=total, limit=flt.limit, offset=flt.offset)


async def run_log(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID, run_id: uuid.UUID
) -> list[LogOut]:
    journey = await get_journey(session, actor, journey_id)
    run = await get_scoped(session, JourneyRun, actor.workspace_id, run_id, "run")
    if run.journey_id != journey.id:
        raise Invalid("run_id", "this run is of another journey")
    rows = await session.scalars(
        select(JourneyLog).where(JourneyLog.run_id == run.id).order_by(JourneyLog.id).limit(1000)
    )
    return [LogOut.model_validate(r) for r in rows]


def _keys(journey: Journey) -> list[str]:
    return [str(s["key"]) for s in journey.steps]


async def enter_members(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID, data: EnterIn, now: datetime
) -> int:
    """Put members in by hand (any trigger; its re-entry policy still holds)."""
    actor.require(Action.manage_people)
    journey = await get_scoped(session, Journey, actor.workspace_id, journey_id, "journey")
    if journey.status == JourneyStatus.archived:
        raise Conflict("status", "the journey is archived")
    if not journey.steps:
        raise Invalid("steps", "the journey has no steps yet")
    if data.at is not None and data.at not in _keys(journey):
        raise Invalid("at", f"no step has the key {data.at!r}")
    known = set(
        await session.scalars(
            select(Member.id).where(
                Member.workspace_id == actor.workspace_id, Member.id.in_(data.member_ids)
            )
        )
    )
    missing = [i for i, m in enumerate(data.member_ids) if m not in known]
    if missing:
        raise Invalid(f"member_ids[{missing[0]}]", "no member of this workspace has this id")
    count = await runs.enter(
        session,
        journey,
        data.member_ids,
        f"manual:{uuid.uuid4()}",
        now,
        actor=actor.label,
        at=data.at,
    )
    record_by(
        session, actor, "journey.entered", journey, f"journey {journey.name!r}: {count} put in"
    )
    return count


async def move_run(
    session: AsyncSession,
    actor: Actor,
    journey_id: uuid.UUID,
    run_id: uuid.UUID,
    data: MoveIn,
    now: datetime,
) -> RunOut:
    """Put a member at any step, or take them out; audited with who did it and why."""
    actor.require(Action.manage_people)
    journey = await get_scoped(session, Journey, actor.workspace_id, journey_id, "journey")
    run = await session.scalar(
        select(JourneyRun)
        .where(JourneyRun.id == run_id, JourneyRun.workspace_id == actor.workspace_id)
        .with_for_update()
    )
    if run is None or run.journey_id != journey.id:
        raise Invalid("run_id", "no run of this journey has this id")
    if run.status != RunStatus.active.value:
        raise Conflict(
            "run_id", f"this run has ended ({run.status}); put the member in again instead"
        )
    if data.to is not None and data.to not in _keys(journey):
        raise Invalid("to", f"no step has the key {data.to!r}")
    came_from = run.step_key
    await runs.move(session, run, data.to, now, actor.label, data.why or "moved by hand")
    member = await session.get_one(Member, run.member_id)
    record_by(
        session,
        actor,
        "journey.moved",
        journey,
        f"journey {journey.name!r}: {member.name} {came_from} → {data.to or 'out'}"
        + (f" ({data.why})" if data.why else ""),
        member.id,
    )
    await session.flush()
    return _run_out(run, member.name)
