"""Public calendar feed URLs. The secret in the path is the only credential."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.calendar.feed import Fingerprint, open_feed, served_feed
from core.clock import utcnow

router = APIRouter(route_class=UnitOfWork, prefix="/ics", tags=["calendar feeds"])
CALENDAR = "text/calendar; charset=utf-8"
# Personal data: browsers and the calendar app may cache, shared proxies must not.
CACHE = "private, max-age=300"


def _not_modified(request: Request, fp: Fingerprint) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match wins; If-Modified-Since counts only without it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or fp.etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since: datetime = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and fp.last_modified <= since
    return False


def _filename(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return (slug or "event")[:60] + ".ics"


async def _serve(request: Request, session: SessionDep, token: str, event_link: bool) -> Response:
    now = utcnow()
    base_url = request.app.state.settings.public_url
    opened = await open_feed(session, token, event_link, now, base_url)
    fp = opened.fingerprint
    headers = {
        "ETag": fp.etag,
        "Last-Modified": format_datetime(fp.last_modified, usegmt=True),
        "Cache-Control": CACHE,
    }
    if _not_modified(request, fp):
        return Response(status_code=304, headers=headers)
    body, title = await served_feed(session, opened, base_url, now)
    if event_link:
        headers["Content-Disposition"] = f'attachment; filename="{_filename(title or "event")}"'

    else:
        headers["Content-Disposition"] = 'inline; filename="vestnik.ics"'
    return Response(body, media_type=CALENDAR, headers=headers)


@router.get("/event/{token}.ics", response_class=Response)
async def event_file(token: str, request: Request, session: SessionDep) -> Response:
    """One event as an .ics file to import."""
    return await _serve(request, session, token, event_link=True)


@router.get("/{token}.ics", response_class=Response)
async def feed(token: str, request: Request, session: SessionDep) -> Response:
    """A member's or a group's calendar feed, to subscribe to."""
    return await _serve(request, session, token, event_link=False)
