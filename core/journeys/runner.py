"""The runner: carries due runs through their steps.

Due runs are claimed from Postgres like jobs: ``FOR UPDATE SKIP LOCKED`` under a lease, so any
number of workers share them and a run whose worker died is taken again once its lease runs
out. A batch is carried out in one transaction, each run in a savepoint; a step's effects (a
message's job, a tag, a log entry, the move to the next step, the tallies) commit together or
not at all, and a message's job is keyed by (run, visit), so a step retried after a crash
never sends twice. A webhook is the one effect outside the transaction: it may be called again
after a crash, with the same X-Vestnik-Delivery id for the receiver to spot it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.delivery.models import Delivery, Job, JobStatus
from core.errors import DomainError
from core.journeys import runs
from core.journeys.conditions import holds
from core.journeys.definition import (
    Alert,
    Condition,
    Definition,
    End,
    GoTo,
    Groups,
    Message,
    Send,
    Step,
    Tags,
    Wait,
    WaitForReply,
    Webhook,
)
from core.journeys.models import Journey, JourneyLog, JourneyRun, JourneyStatus, RunStage, RunStatus
from core.journeys.subject import ALERT, MESSAGE
from core.notify.models import MessageTemplate
from core.teams.groups import add_group_members, remove_group_members
from core.teams.models import Member, MemberStatus, TimeOfDay, Workspace
from core.teams.permissions import system_actor
from core.teams.schemas import MemberIds
from core.teams.tags import tag_members, untag_members

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
MAX_HOPS = 200  # steps one run may take in one pass (a definition has at most 100)
WEBHOOK_TRIES = 8
MESSAGE_SPACING = timedelta(seconds=2)
WEBHOOK_TIMEOUT = 5.0
PREFERRED = {TimeOfDay.morning: time(9), TimeOfDay.day: time(13), TimeOfDay.evening: time(19)}
_ACTIVE = RunStatus.active.value


@dataclass(frozen=True)
class Go:
    to: str | None
    branch: str | None = None


@dataclass(frozen=True)
class Hold:
    """Carried out; look again at ``until`` (a wait's end, a reply's timeout)."""

    until: datetime


@dataclass(frozen=True)
class Retry:
    """Not carried out yet; try the step again at ``at``."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class Fail:
    reason: str


Outcome = Go | Hold | Retry | Fail


class Plan:
    """A journey's steps, parsed once per batch."""

    def __init__(self, journey: Journey) -> None:
        self.journey = journey
        self.definition = Definition.model_validate(
            {
                "trigger": journey.trigger,
                "reentry": journey.reentry.value,
                "steps": journey.steps,
                "stuck_after_hours": journey.stuck_after_hours,
            }
        )
        self.steps = {s.key: s for s in self.definition.steps}
        keys = [s.key for s in self.definition.steps]
        self.following = {
            k: (keys[i + 1] if i + 1 < len(keys) else None) for i, k in enumerate(keys)
        }


async def claim_due_runs(
    session: AsyncSession, owner: str, now: datetime, *, limit: int = 200, lease: timedelta = LEASE
) -> list[uuid.UUID]:
    """Claim up to ``limit`` due runs of active journeys, oldest first. The caller commits."""
    claimable = (
        select(JourneyRun.id)
        .join(Journey, Journey.id == JourneyRun.journey_id)
        .where(
            JourneyRun.status == _ACTIVE,
            JourneyRun.next_at <= now,
            Journey.status == JourneyStatus.active.value,
            or_(JourneyRun.lease_until.is_(None), JourneyRun.lease_until < now),
        )
        .order_by(JourneyRun.next_at)
        .limit(limit)
        .with_for_update(of=JourneyRun, skip_locked=True)
        .scalar_subquery()
    )
    rows = await session.execute(
        update(JourneyRun)
        .where(JourneyRun.id.in_(claimable))
        .values(lease_until=now + lease, claimed_by=owner)
        .returning(JourneyRun.id)
        .execution_options(synchronize_session=False)
    )
    return list(rows.scalars())


async def advance_due(
    sessions: async_sessionmaker[AsyncSession],
    owner: str,
    clock: Callable[[], datetime],
    *,
    limit: int = 200,
    lease: timedelta = LEASE,
    http: httpx.AsyncClient | None = None,
) -> int:
    """Claim due runs and carry each as far as it goes now. Returns how many were claimed."""
    async with sessions() as session:
        ids = await claim_due_runs(session, owner, clock(), limit=limit, lease=lease)
        await session.commit()
    if not ids:
        return 0
    async with sessions() as session:
        chosen = list(
            await session.scalars(
                select(JourneyRun)
                .where(JourneyRun.id.in_(ids), JourneyRun.claimed_by == owner)
                .order_by(JourneyRun.id)
                .with_for_update()
            )
        )
        plans: dict[uuid.UUID, Plan | None] = {}
        rollup = runs.Rollup()
        runs.gather(session, rollup)
        # The batch's members in one read (carry finds them in the session).
        await session.scalars(select(Member).where(Member.id.in_([r.member_id for r in chosen])))
        # Webhooks are called inside this transaction: slow receivers must not hold the batch
        # (and its row locks) past the lease. What is left waits for the next pass, untouched.
        budget = monotonic() + lease.total_seconds() / 2
        for run in chosen:
            if monotonic() > budget:
                run.lease_until = None
                run.claimed_by = None
                continue
            if run.journey_id not in plans:
                journey = await session.get_one(Journey, run.journey_id)
                plans[run.journey_id] = (
                    Plan(journey) if journey.status == JourneyStatus.active else None
                )
            plan = plans[run.journey_id]
            before = rollup.copy()
            try:
                async with session.begin_nested():
                    if plan is not None:
                        await carry(session, plan, run, clock(), http)
            except Exception as exc:  # a bug or a lost connection: this run only
                log.exception("journey run %s: step %s failed", run.id, run.step_key)
                rollup = before  # what the rolled-back savepoint counted is gone with it
                runs.gather(session, rollup)
                await session.refresh(run)
                async with session.begin_nested():
                    await _retry_or_fail(session, run, clock(), f"{type(exc).__name__}: {exc}")
            run.lease_until = None
            run.claimed_by = None
        runs.gather(session, None)
        await rollup.write(session)
        await session.commit()
    return len(ids)


async def carry(
    session: AsyncSession,
    plan: Plan,
    run: JourneyRun,
    now: datetime,
    http: httpx.AsyncClient | None = None,
) -> None:
    """Take ``run`` through its steps until it waits, ends, or must try again later."""
    if run.status != _ACTIVE or run.next_at is None or run.next_at > now:
        return  # moved meanwhile (a reply, a lead)
    member = await session.get_one(Member, run.member_id)
    for _ in range(MAX_HOPS):
        step = plan.steps.get(run.step_key or "")
        if step is None:  # its step was deleted under it: edits move runs on, so this is rare
            await runs.go(session, run, None, now, branch="step deleted")
            return
        if member.status != MemberStatus.active.value:
            await runs.end(session, run, RunStatus.left, now, f"the member is {member.status}")
            return
        following = plan.following[step.key]
        if run.stage == RunStage.wait:
            outcome: Outcome = _timer(step, following)
        else:
            outcome = await _carry_out(session, plan, step, following, run, member, now, http)
        if isinstance(outcome, Go):
            await runs.go(session, run, outcome.to, now, branch=outcome.branch)
            if run.status != _ACTIVE:
                return
            continue
        if isinstance(outcome, Hold):
            run.stage = RunStage.wait
            run.next_at = outcome.until
        elif isinstance(outcome, Retry):
            run.next_at = outcome.at
            runs.log(
                session, run, "held", now, {"until": outcome.at.isoformat(), "why": outcome.reason}
            )
        else:
            await runs.end(session, run, RunStatus.failed, now, outcome.reason)
        return
    await runs.end(session, run, RunStatus.failed, now, "too many steps in one go")


def _timer(step: Step, following: str | None) -> Outcome:
    if isinstance(step, WaitForReply):
        return Go(step.on_timeout or following, branch="timeout")
    return Go(following, branch=None)


async def _carry_out(
    session: AsyncSession,
    plan: Plan,
    step: Step,
    following: str | None,
    run: JourneyRun,
    member: Member,
    now: datetime,
    http: httpx.AsyncClient | None,
) -> Outcome:
    journey = plan.journey
    actor = system_actor(journey.workspace_id, label=f"journey “{journey.name}”")
    try:
        if isinstance(step, Send):
            return await _send(session, run, member, step.message, [], now) or Go(following)
        if isinstance(step, WaitForReply):
            if step.message is not None:
                labels = [c.label for c in step.choices]
                held = await _send(session, run, member, step.message, labels, now)
                if held is not None:
                    return held
            return Hold(now + timedelta(minutes=step.timeout_minutes))
        if isinstance(step, Wait):
            until = wait_until(step, member, now)
            return Go(following) if until <= now else Hold(until)
        if isinstance(step, Condition):
            if await holds(session, member, step.test):
                return Go(step.then or following, branch="then")
            return Go(step.else_ or following, branch="else")
        if isinstance(step, Tags):
            one = MemberIds(member_ids=[member.id])
            for tag_id in step.add:
                await tag_members(session, actor, tag_id, one)
            for tag_id in step.remove:
                await untag_members(session, actor, tag_id, one)
            return Go(following)
        if isinstance(step, Groups):
            one = MemberIds(member_ids=[member.id])
            for group_id in step.add:
                await add_group_members(session, actor, group_id, one)
            for group_id in step.remove:
                await remove_group_members(session, actor, group_id, one)
            return Go(following)
        if isinstance(step, Alert):
            content = {"member": member.name, "step": step.title or step.key, "reason": step.reason}
            await _job(session, run, ALERT, f"journey-alert:{run.id}:{run.visit}", content, now)
            return Go(following)
        if isinstance(step, Webhook):
            return await _webhook(session, journey, step, run, member, now, http) or Go(following)
        if isinstance(step, GoTo):
            return Go(step.to)
        assert isinstance(step, End)
        return Go(None)
    except DomainError as exc:  # a tag, group or template deleted since the journey was saved
        return Fail(f"step {step.key!r}: {exc.detail}")


def wait_until(step: Wait, member: Member, now: datetime) -> datetime:
    zone = ZoneInfo(member.timezone)
    if step.minutes is not None:
        return now + timedelta(minutes=step.minutes)
    if step.until is not None:
        at = step.until
        return at if at.tzinfo is not None else _wall(at, zone)
    at_time = step.until_time or PREFERRED[TimeOfDay(member.preferred_time)]
    local = now.astimezone(zone)
    day = local.date()
    candidate = _wall(datetime.combine(day, at_time), zone)
    if candidate <= now:
        candidate = _wall(datetime.combine(day + timedelta(days=1), at_time), zone)
    return candidate


def _wall(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` as an instant; a time in a spring-forward gap moves on by
    the gap (02:30 that never happens is 03:30), one that happens twice is the first."""
    # fold=0: zoneinfo reads a time in a gap with the offset before it, which is that time
    # moved on by the gap, and a repeated time as its first occurrence (PEP 495).
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


async def _content(session: AsyncSession, message: Message, member: Member) -> dict[str, Any]:
    if message.text is not None:
        return {"text": message.text, "variants": {}, "links": []}
    template = await session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.id == message.template_id,
            MessageTemplate.workspace_id == member.workspace_id,
        )
    )
    if template is None:
        raise DomainError(f"the template {message.template_id} was deleted", code="gone")
    return {"text": template.text, "variants": template.variants, "links": template.buttons}


async def _send(
    session: AsyncSession,
    run: JourneyRun,
    member: Member,
    message: Message,
    choices: list[str],
    now: datetime,
) -> Retry | None:
    """Queue the step's message, unless the member's cap is full (then: when there is room)."""
    room_at = await room_for(session, member, now)
    if room_at is not None:
        return Retry(room_at, "the member's message cap is full")
    content = await _content(session, message, member)
    content["choices"] = choices
    await _job(session, run, MESSAGE, f"journey:{run.id}:{run.visit}", content, now, action="sent")
    return None


async def _job(
    session: AsyncSession,
    run: JourneyRun,
    kind: str,
    key: str,
    content: dict[str, Any],
    now: datetime,
    *,
    action: str = "alerted",
) -> None:
    # Two messages in a row (send, send) are spaced out, so they arrive in the order written
    # even when two workers send them at once.
    latest = await session.scalar(
        select(func.max(Job.due_at)).where(
            Job.journey_run_id == run.id,
            Job.status.in_((JobStatus.pending.value, JobStatus.claimed.value)),
        )
    )
    due = now if latest is None else max(now, latest + MESSAGE_SPACING)
    job_id = await session.scalar(
        pg_insert(Job)
        .values(
            id=uuid.uuid4(),
            workspace_id=run.workspace_id,
            journey_run_id=run.id,
            kind=kind,
            occurrence="",
            occurrence_start=due,
            due_at=due,
            status=JobStatus.pending.value,
            idempotency_key=key,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Job.id)
    )
    if job_id is not None:
        runs.log(session, run, action, now, content, job_id=job_id)


async def room_for(session: AsyncSession, member: Member, now: datetime) -> datetime | None:
    """None if the member may get another journey message now; else when they may. Journey
    messages and broadcasts both count, across every journey of the workspace."""
    workspace = await session.get_one(Workspace, member.workspace_id)
    caps = [
        (cap, window)
        for cap, window in (
            (workspace.member_hourly_cap, timedelta(hours=1)),
            (workspace.member_daily_cap, timedelta(days=1)),
        )
        if cap is not None
    ]
    if not caps:
        return None
    since = now - max(w for _, w in caps)
    journeys = select(JourneyLog.at).where(
        JourneyLog.member_id == member.id, JourneyLog.action == "sent", JourneyLog.at > since
    )
    broadcasts = (
        select(Delivery.created_at)
        .join(Job, Job.id == Delivery.job_id)
        .where(
            Delivery.member_id == member.id, Job.kind == "broadcast", Delivery.created_at > since
        )
    )
    times = sorted((await session.scalars(journeys.union_all(broadcasts))).all())
    wait: datetime | None = None
    for cap, window in caps:
        inside = [t for t in times if t > now - window]
        if len(inside) >= cap:
            free = inside[len(inside) - cap] + window
            wait = free if wait is None else max(wait, free)
    return wait


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _webhook(
    session: AsyncSession,
    journey: Journey,
    step: Webhook,
    run: JourneyRun,
    member: Member,
    now: datetime,
    http: httpx.AsyncClient | None,
) -> Outcome | None:
    body = json.dumps(
        {
            "journey": {"id": str(journey.id), "name": journey.name},
            "step": step.key,
            "run_id": str(run.id),
            "member": {
                "id": str(member.id),
                "name": member.name,
                "external_id": member.external_id,
            },
            "at": now.isoformat(),
        },
        ensure_ascii=False,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vestnik-journeys",
        "X-Vestnik-Delivery": f"{run.id}:{run.visit}",
        "X-Vestnik-Signature": signature(journey.webhook_secret, body),
    }
    run.tries += 1
    try:
        if http is not None:
            response = await http.post(step.url, content=body, headers=headers)
        else:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
                response = await client.post(step.url, content=body, headers=headers)
        ok, what = response.is_success, f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok, what = False, f"{type(exc).__name__}: {exc}"[:300]
    runs.log(session, run, "webhook", now, {"url": step.url, "try": run.tries, "result": what})
    if ok:
        return None
    if run.tries >= WEBHOOK_TRIES:
        return Fail(f"webhook {step.url}: {what} after {run.tries} tries")
    return Retry(now + backoff(run.tries), f"webhook: {what}")


def backoff(tries: int) -> timedelta:
    """5 s, 10 s, 20 s … at most an hour; drawn from the upper half so retries spread."""
    ceiling = min(5.0 * 2 ** (tries - 1), 3600.0)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


async def _retry_or_fail(session: AsyncSession, run: JourneyRun, now: datetime, error: str) -> None:
    run.tries += 1
    if run.tries >= WEBHOOK_TRIES:
        await runs.end(session, run, RunStatus.failed, now, error[:500])
    else:
        run.next_at = now + backoff(run.tries)
        runs.log(session, run, "error", now, {"error": error[:500], "try": run.tries})
