"""Calendar feeds: which events a feed holds, its cheap fingerprint for HTTP caching, its bytes.

A feed is a member's (every event whose audience includes them, with their answers), a group's
(every event addressed to the group) or one event's. Deleted events stay in feeds as CANCELLED for
``DELETED_WINDOW`` so subscribed calendars drop them; one-off events older than ``PAST_WINDOW`` leave.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cachetools import LRUCache
from sqlalchemy import ColumnElement, String, and_, cast, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import memberships, reaches_member
from core.calendar.models import Feed, FeedKind, FeedToken
from core.calendar.vevents import FeedBuilder, clear_vevent_cache
from core.events.models import Confirmation, Event, EventOverride
from core.events.occurrences import overrides_of
from core.teams.models import Group, Member, Workspace

DELETED_WINDOW = timedelta(days=30)
PAST_WINDOW = timedelta(days=180)


@dataclass(frozen=True)
class Fingerprint:
    etag: str
    last_modified: datetime


async def load_feed(session: AsyncSession, token: FeedToken) -> Feed:
    workspace = await session.get_one(Workspace, token.workspace_id)
    kind = FeedKind(token.kind)
    member = await session.get(Member, token.member_id) if token.member_id else None
    group = await session.get(Group, token.group_id) if token.group_id else None
    title = await session.scalar(select(Event.title).where(Event.id == token.event_id))
    return Feed(
        kind, workspace, member=member, group=group, event_id=token.event_id, event_title=title
    )


async def _selection(session: AsyncSession, feed: Feed, now: datetime) -> ColumnElement[bool]:
    """Which events the feed holds, as one condition (shared by the fingerprint and the build)."""
    where = [
        Event.workspace_id == feed.workspace.id,
        or_(Event.deleted_at.is_(None), Event.deleted_at > now - DELETED_WINDOW),
    ]
    if feed.kind is FeedKind.event:
        where.append(Event.id == feed.event_id)
        return and_(*where)
    where.append(or_(Event.rrule.is_not(None), Event.ends_at > now - PAST_WINDOW))
    if feed.member is not None:
        where.append(reaches_member(Event.audience, await memberships(session, feed.member.id)))
    elif feed.group is not None:
        where.append(Event.audience["groups"].has_any(array([str(feed.group.id)])))
    return and_(*where)


async def fingerprint(session: AsyncSession, feed: Feed, now: datetime) -> Fingerprint:
    """ETag and Last-Modified of the feed, from one aggregate query: no calendar is built.

    Every change to an event bumps its SEQUENCE and updated_at; answers, the member's and the
    workspace's names, and the day (events age out of the window) are folded in too.
    """
    selection = await _selection(session, feed, now)
    count, newest, digest = (
        await session.execute(
            select(
                func.count(),
                func.max(Event.updated_at),
                func.md5(
                    func.string_agg(
                        cast(Event.id, String) + ":" + cast(Event.sequence, String),
                        aggregate_order_by(literal_column("','"), Event.id),
                    )
                ),
            ).where(selection)
        )
    ).one()
    stamps = [newest, feed.workspace.updated_at]
    parts = [str(count), str(digest), feed.workspace.name, now.date().isoformat()]
    if feed.member is not None:
        answers, answered = (
            await session.execute(
                select(func.count(), func.max(Confirmation.answered_at)).where(
                    Confirmation.member_id == feed.member.id
                )
            )
        ).one()
        stamps += [answered, feed.member.updated_at]
        parts += [str(answers), str(answered), feed.member.name, feed.member.locale]
    if feed.group is not None:
        stamps.append(feed.group.updated_at)
        parts.append(feed.group.name)
    last_modified = max(s for s in stamps if s is not None).replace(microsecond=0)
    etag = '"' + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32] + '"'
    return Fingerprint(etag=etag, last_modified=last_modified)


# Whole feeds by fingerprint: a calendar app that polls without If-None-Match (many do) gets the
# same bytes back for the price of the fingerprint query.
_BODIES: LRUCache[tuple[object, ...], bytes] = LRUCache(maxsize=128 * 2**20, getsizeof=len)


def clear_caches() -> None:
    """Forget rendered events and feeds (benchmarks use it to measure a cold build)."""
    clear_vevent_cache()
    _BODIES.clear()


async def build_feed(session: AsyncSession, feed: Feed, base_url: str, now: datetime) -> bytes:
    """The whole calendar: three queries (events, overrides, answers), then serialisation."""
    selection = await _selection(session, feed, now)
    events = list(
        await session.scalars(select(Event).where(selection).order_by(Event.starts_at, Event.id))
    )
    ids = [e.id for e in events]
    overrides: dict[uuid.UUID, list[EventOverride]] = {}
    for override in await overrides_of(session, ids):
        overrides.setdefault(override.event_id, []).append(override)
    answers: dict[uuid.UUID, dict[str, str]] = {}
    if feed.member is not None and ids:
        rows = await session.execute(
            select(Confirmation.event_id, Confirmation.occurrence, Confirmation.answer).where(
                Confirmation.member_id == feed.member.id, Confirmation.event_id.in_(ids)
            )
        )
        for event_id, key, answer in rows:
            answers.setdefault(event_id, {})[key] = answer
    builder = FeedBuilder(feed, base_url)
    for event in events:
        builder.add(event, overrides.get(event.id, []), answers.get(event.id, {}))
    return builder.to_ical()


async def feed_body(
    session: AsyncSession, feed: Feed, base_url: str, now: datetime, fp: Fingerprint
) -> bytes:
    """The feed's bytes for this fingerprint: built once, then served from memory."""
    owner = feed.member.id if feed.member else feed.group.id if feed.group else feed.event_id
    key = (feed.kind, owner, fp.etag, base_url)
    body = _BODIES.get(key)
    if body is None:
        body = await build_feed(session, feed, base_url, now)
        _BODIES[key] = body
    return body
