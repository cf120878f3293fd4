"""Calendar feeds: which events a feed holds, its validator for HTTP caching, its bytes.

A feed is a member's (every event whose audience includes them, with their answers), a group's
(every event addressed to the group) or one event's. Deleted events stay in feeds as CANCELLED for
``DELETED_WINDOW`` so subscribed calendars drop them; one-off events older than ``PAST_WINDOW`` leave.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cachetools import LRUCache
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from core.audience.rule import memberships, reaches_member
from core.calendar.models import Feed, FeedKind, FeedToken
from core.calendar.tokens import PREFIX, TOUCH_EVERY
from core.calendar.vevents import FeedBuilder, clear_vevent_cache
from core.db import one_of, plain_connection
from core.errors import NotFound
from core.events.models import Confirmation, Event, EventOverride
from core.secrets import digest, looks_like
from core.teams.models import Group, Member, Workspace

DELETED_WINDOW = timedelta(days=30)
PAST_WINDOW = timedelta(days=180)
# Events rendered between turns of the event loop: a feed's first build is hundreds of
# milliseconds of Python, which would otherwise hold up every other request of its process
# (200 events: 5-10 ms between turns).
RENDERED_PER_TURN = 200


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


@dataclass(frozen=True)
class Opened:
    """A live feed token and its feed's validator, from one indexed lookup (``open_feed``)."""

    token_id: uuid.UUID
    kind: FeedKind
    owner: uuid.UUID | None  # the member, group or event the feed is of
    fingerprint: Fingerprint


async def open_feed(
    session: AsyncSession, raw: str, event_link: bool, now: datetime, base_url: str
) -> Opened:
    """The live token behind a feed URL and its feed's ETag and Last-Modified, in one query: no
    event is read. The versions are bumped by the database in the transaction of every change
    to what the feed shows (migration 0020), so an unchanged feed's validator is exact; the day
    is folded in because events age in and out of a feed's window. NotFound for an unknown or
    revoked token, or one of the other kind (an event's file at a feed's URL, or back)."""
    if not looks_like(raw, PREFIX):
        raise NotFound("feed", "link")
    row = (
        await session.execute(
            select(
                FeedToken.id,
                FeedToken.kind,
                FeedToken.member_id,
                FeedToken.group_id,
                FeedToken.event_id,
                FeedToken.revoked_at,
                FeedToken.last_used_at,
                Workspace.calendar_version,
                Workspace.calendar_changed_at,
                Member.calendar_version,
                Member.calendar_changed_at,
                Group.calendar_version,
                Group.calendar_changed_at,
            )
            .join(Workspace, Workspace.id == FeedToken.workspace_id)
            .outerjoin(Member, Member.id == FeedToken.member_id)
            .outerjoin(Group, Group.id == FeedToken.group_id)
            .where(FeedToken.token_hash == digest(raw))
        )
    ).first()
    if row is None:
        raise NotFound("feed", "link")
    (token_id, kind, member_id, group_id, event_id, revoked, last_used) = row[:7]
    if revoked is not None or (FeedKind(kind) is FeedKind.event) != event_link:
        raise NotFound("feed", "link")
    if last_used is None or now - last_used > TOUCH_EVERY:
        await session.execute(
            update(FeedToken).where(FeedToken.id == token_id).values(last_used_at=now)
        )
    versions = [str(row[i]) for i in (7, 9, 11)]
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    stamps = [t for t in (row[8], row[10], row[12]) if t is not None]
    owner = member_id or group_id or event_id
    parts = [str(kind), str(owner), *versions, now.date().isoformat(), base_url]
    etag = '"' + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32] + '"'
    last_modified = max([*stamps, today]).replace(microsecond=0)
    return Opened(token_id, FeedKind(kind), owner, Fingerprint(etag, last_modified))


# Whole feeds by validator: a calendar app that polls without If-None-Match (many do) gets the
# same bytes back for the price of the validator's one lookup.
_BODIES: LRUCache[tuple[object, ...], tuple[bytes, str | None]] = LRUCache(
    maxsize=128 * 2**20, getsizeof=lambda value: len(value[0])
)


def clear_caches() -> None:
    """Forget rendered events and feeds (benchmarks use it to measure a cold build)."""
    clear_vevent_cache()
    _BODIES.clear()


# What a VEVENT shows of an event: read as plain rows (no ORM objects, no audience JSON), which
# the renderer reads by the same attribute names, as named tuples: a Row's attributes are looked
# up by name at each read (0.8 us, ten times a named tuple's), and rendering 10,000 events reads
# half a million of them.
_SHOWN = (
    Event.id,
    Event.ics_uid,
    Event.title,
    Event.description,
    Event.location,
    Event.timezone,
    Event.all_day,
    Event.starts_at,
    Event.starts_local,
    Event.ends_at,
    Event.rrule,
    Event.exdates,
    Event.reminder_offsets,
    Event.confirm_before_minutes,
    Event.status,
    Event.sequence,
    Event.deleted_at,
    Event.created_at,
    Event.updated_at,
)
_Shown = namedtuple("_Shown", [column.key for column in _SHOWN])  # type: ignore[misc]
# Read as asyncpg gives them: SQLAlchemy's processors for the two arrays and the status (a Python
# call per row and column) were a third of reading 10,000 events; asyncpg already gives lists,
# and the renderer compares the status with its text.
_AS_GIVEN = {Event.exdates.key, Event.reminder_offsets.key, Event.status.key}
_SHOWN_READ = tuple(
    type_coerce(column, NullType()).label(column.key) if column.key in _AS_GIVEN else column
    for column in _SHOWN
)


# An event's version, as its VEVENTs' cache key begins: what an edit moves (updated_at to the
# microsecond; the sequence too), written by Postgres, and whether it asks for answers (its
# VEVENTs then name the member: see ``FeedBuilder.key``).
_EVENT_VERSION = func.concat(
    Event.id,
    "|",
    Event.sequence,
    "|",
    func.extract("epoch", Event.updated_at),
    case((Event.confirm_before_minutes.is_(None), "|-"), else_="|?"),
)
_COMMA = literal(",")  # between versions, which hold none


async def build_feed(session: AsyncSession, feed: Feed, base_url: str, now: datetime) -> bytes:
    """The whole calendar. Each event's VEVENTs come from the cache unless something that shapes
    them changed, so the events are read in two steps: what names a version of each (id,
    sequence, updated_at) for all, as one text, then the rows the renderer reads for the changed
    ones only; plus the moved occurrences and the member's answers. A feed with nothing cached
    (its first build in this process) reads its events in one step. Plain rows, no ORM objects: the
    statements go through the session's connection, which spares the ORM's handling of each row
    (a sixth of reading 10,000 events)."""
    selection = await _selection(session, feed, now)
    connection = await plain_connection(session)
    builder = FeedBuilder(feed, base_url)
    # Moved occurrences and answers by owner, not by 10,000 event ids: both are few, and the
    # events' selection is not evaluated again. Keyed by the event id's text, which begins
    # each event's version (``_EVENT_VERSION``), the key both ways of reading the events have.
    overrides: dict[str, list[EventOverride]] = {}
    moved = await connection.execute(
        select(
            EventOverride.event_id,
            EventOverride.recurrence_id,
            EventOverride.starts_at,
            EventOverride.ends_at,
        ).where(EventOverride.workspace_id == feed.workspace.id)
    )
    for override in moved:
        overrides.setdefault(str(override.event_id), []).append(cast(EventOverride, override))
    answers: dict[str, dict[str, str]] = {}
    if feed.member is not None:
        rows = await connection.execute(
            select(Confirmation.event_id, Confirmation.occurrence, Confirmation.answer).where(
                Confirmation.member_id == feed.member.id
            )
        )
        for owner, occurrence, answer in rows:
            answers.setdefault(str(owner), {})[occurrence] = answer
    none: list[EventOverride] = []
    nothing: dict[str, str] = {}
    ordered = (Event.starts_at, Event.id)
    if builder.cold:
        # All at once: SQLAlchemy fetching row by row was a tenth of reading 10,000 events.
        found_rows = (
            await connection.execute(
                select(_EVENT_VERSION, *_SHOWN_READ).where(selection).order_by(*ordered)
            )
        ).all()
        for done, (version, *row) in enumerate(found_rows, 1):
            event_id = version[:36]
            ours = overrides.get(event_id, none)
            theirs = answers.get(event_id, nothing)
            read = cast(Event, _Shown._make(row))
            builder.add(read, ours, theirs, builder.key(version, ours, theirs), event_id)
            if done % RENDERED_PER_TURN == 0:
                await asyncio.sleep(0)
        return builder.to_ical()
    # The versions as one text, in the feed's order: 10,000 rows of two columns took asyncpg
    # and SQLAlchemy longer to decode than the renderer took to write the one changed event.
    versions = await connection.scalar(
        select(func.string_agg(_EVENT_VERSION, aggregate_order_by(_COMMA, *ordered))).where(
            selection
        )
    )
    plan = []  # per event: its id, key, and VEVENTs if cached
    for version in versions.split(",") if versions else ():
        event_id = version[:36]
        key = builder.key(version, overrides.get(event_id, none), answers.get(event_id, nothing))
        plan.append((event_id, key, builder.lookup(key)))
    missing = [event_id for event_id, _, found in plan if found is None]
    shown: dict[str, Event] = {}
    if missing:
        # Few changed: by id. Most (the cache lost them): by the feed's selection again, which
        # spares sending every id back.
        which = (
            selection
            if 2 * len(missing) > len(plan)
            else one_of(Event.id, [uuid.UUID(event_id) for event_id in missing])
        )
        changed_rows = (await connection.execute(select(*_SHOWN_READ).where(which))).all()
        events = (cast(Event, _Shown._make(row)) for row in changed_rows)
        shown = {str(event.id): event for event in events}
    rendered = 0
    for event_id, key, cached in plan:
        if cached is not None:
            builder.take(cached)
        elif (event := shown.get(event_id)) is not None:  # else it left the feed meanwhile
            ours = overrides.get(event_id, none)
            builder.add(event, ours, answers.get(event_id, nothing), key, event_id)
            rendered += 1
            if rendered % RENDERED_PER_TURN == 0:
                await asyncio.sleep(0)
    return builder.to_ical()


async def served_feed(
    session: AsyncSession, opened: Opened, base_url: str, now: datetime
) -> tuple[bytes, str | None]:
    """The feed's bytes (and, for one event's file, its title) for this validator: built once,
    then served from memory. The key names the feed's owner as well as its ETag."""
    key = (opened.kind, opened.owner, opened.fingerprint.etag, base_url)
    cached = _BODIES.get(key)
    if cached is None:
        token = await session.get_one(FeedToken, opened.token_id)
        feed = await load_feed(session, token)
        body = await build_feed(session, feed, base_url, now)
        cached = (body, feed.event_title)
        _BODIES[key] = cached
    return cached
