"""Delivery and reach statistics (JSON and CSV), a member's timeline, and the audit log."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.audit import AuditOut, audit_log
from core.clock import utcnow
from core.insights import statistics
from core.insights.exports import days_csv, deliveries_csv
from core.insights.statistics import SubjectStats, WorkspaceStats
from core.insights.timeline import Timeline, member_timeline
from core.notify import unheard
from core.teams.invites import IssuedInvite, invite_not_joined

router = APIRouter(route_class=UnitOfWork, tags=["statistics"])

Since = Annotated[date | None, Query(description="First UTC day; 30 days before until by default")]
Until = Annotated[date | None, Query(description="Last UTC day; today by default")]


def csv_response(body: str, filename: str) -> Response:
    return Response(
        content=body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/stats/days")
async def workspace_days(
    actor: ActorDep, session: SessionDep, since: Since = None, until: Until = None
) -> WorkspaceStats:
    """Per UTC day: messages sent per channel (against the daily limit), the busiest second
    (against the per-second limit), failures, new members, unsubscribes, blocks, confirmation
    requests and answers; and the members as they are now (active, unsubscribed, unreachable)."""
    return await statistics.workspace_stats(session, actor, since, until)


@router.get("/stats/days.csv", response_class=Response)
async def workspace_days_csv(
    actor: ActorDep, session: SessionDep, since: Since = None, until: Until = None
) -> Response:
    """The same per-day figures as a spreadsheet (UTF-8 CSV)."""
    stats = await statistics.workspace_stats(session, actor, since, until)
    return csv_response(days_csv(stats), f"vestnik-days-{stats.since}-{stats.until}.csv")


@router.get("/broadcasts/{broadcast_id}/stats")
async def broadcast_stats(
    broadcast_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> SubjectStats:
    """Audience size, sent, failed (by reason), unreachable, waiting."""
    return await statistics.broadcast_stats(session, actor, broadcast_id)


@router.get("/broadcasts/{broadcast_id}/deliveries.csv", response_class=Response)
async def broadcast_deliveries_csv(
    broadcast_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> Response:
    """One line per member and channel: status, reason, when."""
    rows = await statistics.delivery_rows(session, actor, "broadcast", broadcast_id)
    return csv_response(deliveries_csv(rows), f"vestnik-broadcast-{broadcast_id}.csv")


@router.get("/events/{event_id}/stats")
async def event_stats(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> SubjectStats:
    """Deliveries of every reminder, request and nudge; answers; time to the first answer."""
    return await statistics.event_stats(session, actor, event_id)


@router.get("/events/{event_id}/deliveries.csv", response_class=Response)
async def event_deliveries_csv(
    event_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> Response:
    rows = await statistics.delivery_rows(session, actor, "event", event_id)
    return csv_response(deliveries_csv(rows), f"vestnik-event-{event_id}.csv")


@router.get("/members/{member_id}/timeline")
async def timeline(
    member_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Timeline:
    """What did we send to this person: every delivery and its outcome, answers, tag changes,
    unsubscribes and blocks, newest first."""
    return await member_timeline(session, actor, member_id, limit)


@router.get("/audit")
async def audit(
    actor: ActorDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[datetime | None, Query(description="Entries before this time")] = None,
    everyone: Annotated[
        bool, Query(description="Include what members and messengers did themselves")
    ] = False,
) -> list[AuditOut]:
    """Who created, changed, cancelled or sent what, and when; newest first."""
    return await audit_log(session, actor, limit=limit, before=before, leads_only=not everyone)


class Resent(BaseModel):
    resent: int = Field(description="Deliveries of unknown outcome sent again (now)")


@router.post("/broadcasts/{broadcast_id}/resend-unknown")
async def broadcast_resend_unknown(
    broadcast_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> Resent:
    """Send again every message of this broadcast whose outcome is unknown (a worker stopped
    mid-send): some of those members may get it twice. Recorded in the audit log."""
    count = await unheard.resend_unknown(session, actor, utcnow(), broadcast_id=broadcast_id)
    return Resent(resent=count)


@router.post("/events/{event_id}/resend-unknown")
async def event_resend_unknown(event_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Resent:
    """Send again every message about this event whose outcome is unknown (still useful ones:
    a reminder after the start fails as too late)."""
    count = await unheard.resend_unknown(session, actor, utcnow(), event_id=event_id)
    return Resent(resent=count)


@router.post("/broadcasts/{broadcast_id}/invite-not-joined")
async def broadcast_invite_not_joined(
    broadcast_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep
) -> list[IssuedInvite]:
    """A personal invite for each member this broadcast could not reach because they never
    opened the bot (a bot cannot write first). Tokens and links are shown once."""
    members = await unheard.not_joined_members(session, actor, broadcast_id=broadcast_id)
    username = request.app.state.settings.telegram_bot_username
    out = await invite_not_joined(session, actor, members, username)
    return out


@router.post("/events/{event_id}/invite-not-joined")
async def event_invite_not_joined(
    event_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep
) -> list[IssuedInvite]:
    """A personal invite for each member this event's messages could not reach because they
    never opened the bot."""
    members = await unheard.not_joined_members(session, actor, event_id=event_id)
    username = request.app.state.settings.telegram_bot_username
    out = await invite_not_joined(session, actor, members, username)
    return out
