"""Moving runs: entering members (one statement for any number), going from step to step,
ending. Every move writes its log entry and keeps the tallies exact in the same transaction, so
the statistics are never a scan and never drift. Callers commit."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import one_of
from core.journeys.models import (
    Journey,
    JourneyDay,
    JourneyDwell,
    JourneyLog,
    JourneyRun,
    JourneyStepDay,
    JourneyStepTally,
    Reentry,
    RunStage,
    RunStatus,
)
from core.teams.models import Member, MemberStatus

_ACTIVE = RunStatus.active.value
_GROWTH = math.log(1.05)


def dwell_bucket(seconds: float) -> int:
    return round(math.log1p(max(seconds, 0.0)) / _GROWTH)


def bucket_seconds(bucket: int) -> float:
    return math.expm1(bucket * _GROWTH)


Counted = type[JourneyStepTally] | type[JourneyDay] | type[JourneyDwell] | type[JourneyStepDay]
_Where = tuple[tuple[str, Any], ...]


class Rollup:
    """Tally changes gathered over a batch of runs and written in a few statements at its end,
    in the same transaction: still exact, but a run's move costs no round trips for them and
    concurrent workers hold the hot tally rows only for the moment of the final upserts."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, _Where], dict[str, int]] = {}
        self.models: dict[str, Counted] = {}

    def add(self, model: Counted, where: dict[str, Any], deltas: dict[str, int]) -> None:
        name = model.__tablename__
        self.models[name] = model
        into = self.counts.setdefault((name, tuple(sorted(where.items()))), {})
        for k, v in deltas.items():
            into[k] = into.get(k, 0) + v

    def copy(self) -> Rollup:
        """A snapshot to go back to when a run's savepoint is rolled back."""
        other = Rollup()
        other.counts = {k: dict(v) for k, v in self.counts.items()}
        other.models = dict(self.models)
        return other

    async def write(self, session: AsyncSession) -> None:
        """Write what was gathered, in a fixed order (two workers never deadlock on it)."""
        for (name, where), deltas in sorted(self.counts.items()):
            await _upsert(session, self.models[name], dict(where), deltas)
        self.counts = {}


def _rollup(session: AsyncSession) -> Rollup | None:
    found = session.info.get("journey_rollup")
    return found if isinstance(found, Rollup) else None


def gather(session: AsyncSession, rollup: Rollup | None) -> None:
    """From now on this session's tally changes go to ``rollup`` (None: straight to the
    database); whoever sets one writes it before committing."""
    if rollup is None:
        session.info.pop("journey_rollup", None)
    else:
        session.info["journey_rollup"] = rollup


async def _count(
    session: AsyncSession, model: Counted, where: dict[str, Any], **deltas: int
) -> None:
    """Add ``deltas`` to the counters of ``model``'s row ``where`` (made at 0 if missing): in
    the session's rollup if it gathers one, else at once."""
    rollup = _rollup(session)
    if rollup is not None:
        rollup.add(model, where, deltas)
    else:
        await _upsert(session, model, where, deltas)


async def _upsert(
    session: AsyncSession, model: Counted, where: dict[str, Any], deltas: dict[str, int]
) -> None:
    counters = [c.name for c in model.__table__.columns if c.name not in where]
    stmt = pg_insert(model).values(**where, **{c: deltas.get(c, 0) for c in counters})
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=list(where),
            set_={k: getattr(model, k) + stmt.excluded[k] for k in deltas},
        )
    )


async def _tally(session: AsyncSession, journey_id: uuid.UUID, key: str, **deltas: int) -> None:
    await _count(session, JourneyStepTally, {"journey_id": journey_id, "step_key": key}, **deltas)


async def _reach(
    session: AsyncSession, journey_id: uuid.UUID, key: str, now: datetime, n: int = 1
) -> None:
    """``n`` runs arrived at the step ``key``: its tally and its count for the day."""
    await _tally(session, journey_id, key, reached=n)
    where = {"journey_id": journey_id, "step_key": key, "day": now.astimezone(UTC).date()}
    await _count(session, JourneyStepDay, where, reached=n)


async def _day(session: AsyncSession, journey_id: uuid.UUID, now: datetime, **deltas: int) -> None:
    where = {"journey_id": journey_id, "day": now.astimezone(UTC).date()}
    await _count(session, JourneyDay, where, **deltas)


async def _dwell(session: AsyncSession, journey_id: uuid.UUID, key: str, seconds: float) -> None:
    where = {"journey_id": journey_id, "step_key": key, "bucket": dwell_bucket(seconds)}
    await _count(session, JourneyDwell, where, n=1)


def log(
    session: AsyncSession,
    run: JourneyRun,
    action: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
    *,
    job_id: uuid.UUID | None = None,
    actor: str | None = None,
) -> None:
    session.add(
        JourneyLog(
            workspace_id=run.workspace_id,
            journey_id=run.journey_id,
            run_id=run.id,
            member_id=run.member_id,
            step_key=run.step_key,
            visit=run.visit,
            action=action,
            detail=detail or {},
            job_id=job_id,
            actor=actor,
            at=now,
        )
    )


async def _leave_step(session: AsyncSession, run: JourneyRun, now: datetime, outcome: str) -> None:
    if run.step_key is None:
        return
    await _tally(session, run.journey_id, run.step_key, **{outcome: 1})
    if outcome == "went_on":
        await _dwell(session, run.journey_id, run.step_key, (now - run.step_since).total_seconds())


async def go(
    session: AsyncSession,
    run: JourneyRun,
    to: str | None,
    now: datetime,
    *,
    branch: str | None = None,
    actor: str | None = None,
) -> None:
    """Leave the current step for ``to`` (None: the run is finished)."""
    await _leave_step(session, run, now, "went_on")
    if to is None:
        await _end(session, run, RunStatus.finished, now, "reached the end", actor=actor)
        return
    _arrive(run, to, now)
    await _reach(session, run.journey_id, to, now)
    log(session, run, "entered", now, {"branch": branch} if branch else None, actor=actor)


def _arrive(run: JourneyRun, to: str, now: datetime) -> None:
    run.step_key = to
    run.visit += 1
    run.step_since = now
    run.stage = RunStage.enter
    run.next_at = now
    run.tries = 0


async def move(
    session: AsyncSession, run: JourneyRun, to: str | None, now: datetime, actor: str, why: str
) -> None:
    """Put a run at ``to`` by hand, or take it out (None). Not "went on": the step it leaves
    counts it as left, the step it lands on as reached."""
    await _leave_step(session, run, now, "left")
    if to is None:
        await _end(session, run, RunStatus.left, now, why, actor=actor, counted=True)
        return
    came_from = run.step_key
    _arrive(run, to, now)
    await _reach(session, run.journey_id, to, now)
    log(session, run, "moved", now, {"from": came_from, "why": why}, actor=actor)


async def end(
    session: AsyncSession,
    run: JourneyRun,
    status: RunStatus,
    now: datetime,
    reason: str,
    *,
    actor: str | None = None,
) -> None:
    """End a run where it stands: left (taken out) or failed (a step could not be done)."""
    await _leave_step(session, run, now, "failed" if status is RunStatus.failed else "left")
    await _end(session, run, status, now, reason, actor=actor, counted=True)


async def _end(
    session: AsyncSession,
    run: JourneyRun,
    status: RunStatus,
    now: datetime,
    reason: str,
    *,
    actor: str | None = None,
    counted: bool = False,
) -> None:
    run.status = status
    run.ended_at = now
    run.end_reason = reason
    run.next_at = None
    run.lease_until = None
    await _day(session, run.journey_id, now, **{status.value: 1})
    log(session, run, status.value, now, {"reason": reason}, actor=actor)
    await session.flush()
    if run.again and status is not RunStatus.failed:
        journey = await session.get_one(Journey, run.journey_id)
        await enter(session, journey, [run.member_id], f"again:{run.id}", now)


def _among(column: Any, members: Sequence[uuid.UUID] | Select[uuid.UUID]) -> ColumnElement[bool]:
    """``column`` is one of ``members``: a subquery, or one array parameter (a list of 100,000
    ids would be 100,000 parameters, past what the Postgres protocol carries)."""
    if isinstance(members, Select):
        return cast(ColumnElement[bool], column.in_(members.scalar_subquery()))
    return one_of(column, members)


def _candidates(
    journey: Journey,
    members: Sequence[uuid.UUID] | Select[uuid.UUID],
    key: ColumnElement[str],
) -> Select[uuid.UUID, str]:
    inside = select(JourneyRun.id).where(
        JourneyRun.journey_id == journey.id, JourneyRun.member_id == Member.id
    )
    if journey.reentry != Reentry.once:
        inside = inside.where(JourneyRun.status == _ACTIVE)
    return select(Member.id, key.label("entry_key")).where(
        Member.workspace_id == journey.workspace_id,
        Member.status == MemberStatus.active.value,
        _among(Member.id, members),
        ~exists(inside),
    )


async def enter(
    session: AsyncSession,
    journey: Journey,
    members: Sequence[uuid.UUID] | Select[uuid.UUID],
    entry_key: str | ColumnElement[str],
    now: datetime,
    *,
    actor: str | None = None,
    at: str | None = None,
) -> int:
    """Put members (ids, or a query of ids) into the journey at its first step (or ``at``), as
    its re-entry policy allows; one statement whatever their number. ``entry_key`` names the
    trigger's firing: reporting it again enters nobody twice. Returns how many entered."""
    if not journey.steps:  # a draft being built: nothing to enter into yet
        return 0
    first = at or str(journey.steps[0]["key"])
    trigger = actor or str(journey.trigger.get("type", ""))
    key = literal(entry_key) if isinstance(entry_key, str) else entry_key
    if journey.reentry == Reentry.after_end:
        # A firing the run came in by (a sweep that runs again, a signal posted twice) is not a
        # new one: only a new firing earns another go once this run ends.
        await session.execute(
            update(JourneyRun)
            .where(
                JourneyRun.journey_id == journey.id,
                JourneyRun.status == _ACTIVE,
                Member.id == JourneyRun.member_id,
                _among(JourneyRun.member_id, members),
                JourneyRun.entry_key != key,
            )
            .values(again=True)
            .execution_options(synchronize_session=False)
        )
    candidates = _candidates(journey, members, key).subquery()
    columns = [
        "id",
        "workspace_id",
        "journey_id",
        "member_id",
        "entry_key",
        "status",
        "step_key",
        "step_since",
        "visit",
        "stage",
        "next_at",
        "tries",
        "again",
        "entered_at",
    ]
    source = select(
        func.gen_random_uuid(),
        literal(journey.workspace_id),
        literal(journey.id),
        candidates.c.id,
        candidates.c.entry_key,
        literal(_ACTIVE),
        literal(first),
        literal(now),
        literal(1),
        literal(RunStage.enter.value),
        literal(now),
        literal(0),
        literal(False),
        literal(now),
    )
    new = (
        pg_insert(JourneyRun)
        .from_select(columns, source)
        .on_conflict_do_nothing()
        .returning(JourneyRun.id, JourneyRun.member_id)
        .cte("new")
    )
    logged = (
        insert(JourneyLog)
        .from_select(
            [
                "workspace_id",
                "journey_id",
                "run_id",
                "member_id",
                "step_key",
                "visit",
                "action",
                "detail",
                "actor",
                "at",
            ],
            select(
                literal(journey.workspace_id),
                literal(journey.id),
                new.c.id,
                new.c.member_id,
                literal(first),
                literal(1),
                literal("entered"),
                func.jsonb_build_object("trigger", trigger),
                literal(actor),
                literal(now),
            ),
        )
        .returning(JourneyLog.id)
        .cte("logged")
    )
    count = await session.scalar(select(func.count()).select_from(logged)) or 0
    if count:
        await _reach(session, journey.id, first, now, count)
        await _day(session, journey.id, now, entered=count)
    return count


async def take_out_at(
    session: AsyncSession, journey: Journey, keys: list[str], now: datetime, actor: str, why: str
) -> int:
    """End every active run of ``journey`` standing at one of ``keys`` (all if empty)."""
    where = [JourneyRun.journey_id == journey.id, JourneyRun.status == _ACTIVE]
    if keys:
        where.append(JourneyRun.step_key.in_(keys))
    runs = list(await session.scalars(select(JourneyRun).where(and_(*where)).with_for_update()))
    for run in runs:
        await end(session, run, RunStatus.left, now, why, actor=actor)
    return len(runs)
