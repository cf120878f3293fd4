"""A journey's statistics: per step reached / waiting / went on / left / failed, conversion from
entry, median time at the step, who is stuck; per day entered / finished / left / failed; CSV.

Read from the tallies kept exact with every move (core.journeys.runs) and from the active runs
(one index range per step), never from the run log, so they cost the same at a million log rows
as at ten."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journeys.models import (
    JourneyDay,
    JourneyDwell,
    JourneyRun,
    JourneyStepDay,
    JourneyStepTally,
    RunStatus,
)
from core.journeys.runs import bucket_seconds
from core.journeys.service import get_journey
from core.teams.models import Member
from core.teams.permissions import Actor

STUCK_LISTED = 20


class StuckMember(BaseModel):
    member_id: uuid.UUID
    name: str
    run_id: uuid.UUID
    since: datetime


class StepStats(BaseModel):
    key: str
    type: str
    title: str
    reached: int
    waiting: int = Field(description="At the step now")
    went_on: int
    left: int
    failed: int
    conversion: float | None = Field(description="Reached ÷ entered the journey")
    median_seconds: float | None = Field(
        description="Median time at the step of those who went on (±2.5 %)"
    )
    stuck: int = Field(description="At the step longer than the stuck threshold")
    stuck_members: list[StuckMember] = Field(description=f"The {STUCK_LISTED} stuck longest")


class DayStats(BaseModel):
    day: date
    entered: int
    finished: int
    left: int
    failed: int


class StepDay(BaseModel):
    day: date
    key: str
    reached: int


class JourneyStats(BaseModel):
    journey_id: uuid.UUID
    entered: int
    inside: int
    stuck_after_hours: int
    steps: list[StepStats]
    days: list[DayStats]
    # Steps that were deleted but still hold history.
    former_steps: list[StepStats]
    step_days: list[StepDay] = Field(description="Per UTC day and step: how many reached it")


def _median(buckets: list[tuple[int, int]]) -> float | None:
    total = sum(n for _, n in buckets)
    if not total:
        return None
    seen = 0
    for bucket, n in sorted(buckets):
        seen += n
        if seen * 2 >= total:
            return round(bucket_seconds(bucket), 1)
    return None


async def journey_stats(
    session: AsyncSession, actor: Actor, journey_id: uuid.UUID, now: datetime, days: int = 30
) -> JourneyStats:
    journey = await get_journey(session, actor, journey_id)
    tallies = {
        t.step_key: t
        for t in await session.scalars(
            select(JourneyStepTally).where(JourneyStepTally.journey_id == journey.id)
        )
    }
    dwell: dict[str, list[tuple[int, int]]] = {}
    for key, bucket, n in await session.execute(
        select(JourneyDwell.step_key, JourneyDwell.bucket, JourneyDwell.n).where(
            JourneyDwell.journey_id == journey.id
        )
    ):
        dwell.setdefault(key, []).append((bucket, n))
    active = (JourneyRun.journey_id == journey.id, JourneyRun.status == RunStatus.active.value)
    waiting = dict(
        (k, n)
        for k, n in await session.execute(
            select(JourneyRun.step_key, func.count()).where(*active).group_by(JourneyRun.step_key)
        )
    )
    threshold = now - timedelta(hours=journey.stuck_after_hours)
    stuck = dict(
        (k, n)
        for k, n in await session.execute(
            select(JourneyRun.step_key, func.count())
            .where(*active, JourneyRun.step_since < threshold)
            .group_by(JourneyRun.step_key)
        )
    )
    entered = (
        await session.scalar(
            select(func.coalesce(func.sum(JourneyDay.entered), 0)).where(
                JourneyDay.journey_id == journey.id
            )
        )
        or 0
    )

    async def step(key: str, kind: str, title: str) -> StepStats:
        t = tallies.get(key)
        listed = []
        if stuck.get(key):
            rows = await session.execute(
                select(JourneyRun.id, JourneyRun.member_id, Member.name, JourneyRun.step_since)
                .join(Member, Member.id == JourneyRun.member_id)
                .where(*active, JourneyRun.step_key == key, JourneyRun.step_since < threshold)
                .order_by(JourneyRun.step_since)
                .limit(STUCK_LISTED)
            )
            listed = [StuckMember(run_id=r, member_id=m, name=n, since=s) for r, m, n, s in rows]
        reached = t.reached if t else 0
        return StepStats(
            key=key,
            type=kind,
            title=title,
            reached=reached,
            waiting=waiting.get(key, 0),
            went_on=t.went_on if t else 0,
            left=t.left if t else 0,
            failed=t.failed if t else 0,
            conversion=round(reached / entered, 4) if entered else None,
            median_seconds=_median(dwell.get(key, [])),
            stuck=stuck.get(key, 0),
            stuck_members=listed,
        )

    keys = [str(s["key"]) for s in journey.steps]
    steps = [
        await step(str(s["key"]), str(s["type"]), str(s.get("title", ""))) for s in journey.steps
    ]
    former = [await step(k, "deleted", "") for k in sorted(tallies) if k not in keys]
    since = (now - timedelta(days=days)).date()
    day_rows = await session.scalars(
        select(JourneyDay)
        .where(JourneyDay.journey_id == journey.id, JourneyDay.day >= since)
        .order_by(JourneyDay.day)
    )
    step_days = await session.scalars(
        select(JourneyStepDay)
        .where(JourneyStepDay.journey_id == journey.id, JourneyStepDay.day >= since)
        .order_by(JourneyStepDay.day, JourneyStepDay.step_key)
    )
    return JourneyStats(
        journey_id=journey.id,
        entered=int(entered),
        inside=sum(waiting.values()),
        stuck_after_hours=journey.stuck_after_hours,
        steps=steps,
        days=[
            DayStats(
                day=d.day, entered=d.entered, finished=d.finished, left=d.left, failed=d.failed
            )
            for d in day_rows
        ],
        former_steps=former,
        step_days=[StepDay(day=d.day, key=d.step_key, reached=d.reached) for d in step_days],
    )


CSV_HEADER = (
    "step",
    "type",
    "title",
    "reached",
    "waiting",
    "went_on",
    "left",
    "failed",
    "conversion",
    "median_seconds",
    "stuck",
)


def csv_rows(stats: JourneyStats) -> list[list[object]]:
    """One row per step (deleted ones last), in CSV_HEADER's order."""
    return [
        [
            s.key,
            s.type,
            _safe(s.title),
            s.reached,
            s.waiting,
            s.went_on,
            s.left,
            s.failed,
            s.conversion,
            s.median_seconds,
            s.stuck,
        ]
        for s in [*stats.steps, *stats.former_steps]
    ]


def _safe(cell: str) -> str:
    """A title a spreadsheet would run as a formula is written as text."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
