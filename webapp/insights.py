"""The lead's statistics page (SVG charts, recent broadcasts and events, CSV downloads), a
member's timeline ("what did we send to this person?") and the audit log. Figures come from
core.insights.statistics, the same the API serves."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.routes.statistics import csv_response
from api.unit_of_work import UnitOfWork
from core.audit import audit_log
from core.errors import NotFound
from core.insights.exports import days_csv, deliveries_csv
from core.insights.statistics import (
    broadcast_stats,
    delivery_rows,
    event_stats,
    recent_events,
    workspace_stats,
)
from core.insights.timeline import member_timeline
from core.notify.broadcasts import recent_broadcasts
from core.notify.messages import format_when
from webapp.charts import bars, line
from webapp.console import Console, LeadConsole
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app", include_in_schema=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


@router.get("/stats", response_class=HTMLResponse)
async def stats_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    words = lead.words
    stats = await workspace_stats(session, lead.actor)
    labels = [d.day.strftime("%d.%m") for d in stats.days]
    channels = sorted({c for d in stats.days for c in d.sent}) or ["telegram"]
    charts = [
        bars(
            words["chart_sent"],
            labels,
            [[d.sent.get(c, 0) for d in stats.days] for c in channels],
            channels,
            stats.daily_limit,
            words["daily_limit"],
        ),
        bars(
            words["chart_peak"],
            labels,
            [[d.peak_per_second.get(c, 0) for d in stats.days] for c in channels],
            channels,
            stats.rate_per_second,
            words["rate_limit"],
        ),
        bars(
            words["chart_members"],
            labels,
            [
                [d.new_members for d in stats.days],
                [d.unsubscribed for d in stats.days],
                [d.blocked for d in stats.days],
            ],
            words["chart_members"].split(" / "),
        ),
        line(words["chart_answers"], labels, stats.answer_rate),
    ]
    broadcasts = [
        await broadcast_stats(session, lead.actor, i)
        for i in await recent_broadcasts(session, lead.actor)
    ]
    events = [
        await event_stats(session, lead.actor, i) for i in await recent_events(session, lead.actor)
    ]
    context = lead.context(
        stats=stats,
        charts=charts,
        broadcasts=broadcasts,
        events=events,
        period=words["stats_period"].format(n=len(stats.days)),
        duration=_duration,
        at=lead.member.daily_report_at.strftime("%H:%M") if lead.member.daily_report_at else "",
        error="",
    )
    return _page(request, "stats.html", context)


@router.post("/stats/report", response_class=HTMLResponse)
async def report_time(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    at: Annotated[str, Form(max_length=5)] = "",
) -> HTMLResponse:
    """When this lead gets the daily report in the bot (their local time), or never (empty)."""
    words = lead.words
    try:
        chosen = time.fromisoformat(at) if at.strip() else None
    except ValueError:
        return _page(
            request, "_report_form.html", lead.context(at=at, error=words["report_bad"]), 422
        )
    lead.member.daily_report_at = chosen
    await session.flush()
    shown = chosen.strftime("%H:%M") if chosen else ""
    return _page(request, "_report_form.html", lead.context(at=shown, saved=True, error=""))


@router.get("/stats/days.csv", response_class=Response)
async def days_export(session: SessionDep, lead: LeadConsole) -> Response:
    stats = await workspace_stats(session, lead.actor)
    return csv_response(days_csv(stats), f"vestnik-days-{stats.since}-{stats.until}.csv")


@router.get("/stats/{kind}/{subject_id}.csv", response_class=Response)
async def deliveries_export(
    kind: str, subject_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> Response:
    if kind not in ("broadcast", "event"):
        raise NotFound("export", kind)
    rows = await delivery_rows(session, lead.actor, kind, subject_id)
    return csv_response(deliveries_csv(rows), f"vestnik-{kind}-{subject_id}.csv")


@router.get("/people/{member_id}/timeline", response_class=HTMLResponse)
async def timeline_page(
    request: Request, member_id: uuid.UUID, session: SessionDep, lead: LeadConsole
) -> HTMLResponse:
    timeline = await member_timeline(session, lead.actor, member_id)
    items = [_when(lead, item.at) | {"item": item} for item in timeline.items]
    return _page(request, "timeline.html", lead.context(timeline=timeline, items=items))


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    entries = await audit_log(session, lead.actor, limit=200)
    rows = [_when(lead, e.at) | {"entry": e} for e in entries]
    return _page(request, "audit.html", lead.context(rows=rows))


def _when(lead: Console, at: Any) -> dict[str, Any]:
    return {"when": format_when(at, lead.member.timezone, lead.member.locale)}
