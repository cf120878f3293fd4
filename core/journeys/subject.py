"""Journey messages and alerts as the engine's subjects (core.delivery.subjects): a step's
message goes through the same delivery rows, quiet hours, rate limits, statistics and timeline
as a reminder. What a message says was fixed when its step was carried out (the run log keeps
it), so editing a template later never changes a message already on its way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.channels import OutboundMessage
from core.delivery.models import Job
from core.delivery.subjects import Outlets, register
from core.journeys.models import Journey, JourneyLog, JourneyRun, JourneyStatus, RunStatus
from core.notify.messages import render_broadcast
from core.teams.models import Member, MemberStatus
from core.teams.roles import lead_ids

MESSAGE = "journey_message"
ALERT = "journey_alert"
# A step's message held back (quiet hours, the per-member cap) still goes within this time.
USEFUL_FOR = timedelta(hours=24)
_ACTIVE = Member.status == MemberStatus.active.value


def choice_answer(index: int) -> str:
    return f"choice{index}"


@dataclass(frozen=True)
class JourneyMessageSubject:
    job: Job
    run: JourneyRun
    journey: Journey
    content: dict[str, Any]

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.run.workspace_id

    @property
    def gone(self) -> str | None:
        if self.journey.status == JourneyStatus.archived:
            return "the journey was archived"
        if self.run.status == RunStatus.left:
            return "the member was taken out of the journey"
        return None

    def recipients(self) -> Select[Member]:
        return select(Member).where(Member.id == self.run.member_id, _ACTIVE)

    def useful_until(self) -> datetime:
        return self.job.occurrence_start + USEFUL_FOR

    def local_due(self, member: Member) -> datetime | None:
        return None

    async def board(self, session: AsyncSession) -> None:
        return None

    def message(self, member: Member, board: object | None) -> OutboundMessage:
        c = self.content
        out = render_broadcast(c.get("text", ""), member, c.get("variants"), c.get("links"))
        buttons = [(label, choice_answer(i)) for i, label in enumerate(c.get("choices", []))]
        return OutboundMessage(text=out.text, buttons=buttons, links=out.links)

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        return 0


@dataclass(frozen=True)
class JourneyAlertSubject(JourneyMessageSubject):
    """Tells the workspace's leads about one member (the step's reason)."""

    @property
    def gone(self) -> str | None:
        return None

    def recipients(self) -> Select[Member]:
        return (
            select(Member)
            .where(Member.id.in_(lead_ids(self.run.workspace_id)), _ACTIVE)
            .order_by(Member.name)
        )

    def message(self, member: Member, board: object | None) -> OutboundMessage:
        c = self.content
        return OutboundMessage(
            text=f"⚠ {c['member']} — “{self.journey.name}”, step “{c['step']}”:\n{c['reason']}"
        )


async def _load(session: AsyncSession, job: Job) -> JourneyMessageSubject:
    assert job.journey_run_id is not None
    run = await session.get_one(JourneyRun, job.journey_run_id)
    journey = await session.get_one(Journey, run.journey_id)
    content = await session.scalar(select(JourneyLog.detail).where(JourneyLog.job_id == job.id))
    kind = JourneyAlertSubject if job.kind == ALERT else JourneyMessageSubject
    return kind(job, run, journey, content or {})


def install() -> None:
    register(MESSAGE, _load)
    register(ALERT, _load)
