"""Building iCalendar feeds (RFC 5545) and their cheap fingerprints for HTTP caching.

A feed is a member's (every event whose audience includes them, with their answers), a group's
(every event addressed to the group) or one event's. Deleted events stay in feeds as CANCELLED for
``DELETED_WINDOW`` so subscribed calendars drop them; one-off events older than ``PAST_WINDOW`` leave.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from cachetools import LRUCache
from icalendar import Alarm, Calendar, Timezone, vCalAddress, vRecur
from icalendar import Event as VEvent
from sqlalchemy import ColumnElement, String, and_, cast, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.ext.asyncio import AsyncSession

from core.calendar.models import FeedKind, FeedToken
from core.events.confirmations import occurrence_key
from core.events.models import Answer, Confirmation, Event, EventOverride, EventStatus
from core.events.occurrences import end_of, overrides_of
from core.notify.audience import memberships, reaches_member
from core.teams.models import Group, Member, Workspace

DELETED_WINDOW = timedelta(days=30)
PAST_WINDOW = timedelta(days=180)
REFRESH = timedelta(hours=1)
PRODID = "-//vestnik//vestnik calendar feed//EN"
_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT"}
_PARTSTAT = {
    Answer.going.value: "ACCEPTED",
    Answer.not_going.value: "DECLINED",
    Answer.maybe.value: "TENTATIVE",
}
_ANSWER_TEXT = {
    "en": {"going": "going", "not_going": "not going", "maybe": "maybe"},
    "ru": {"going": "иду", "not_going": "не иду", "maybe": "возможно"},
}


@dataclass(frozen=True)
class Feed:
    """What a feed token opens: its kind, workspace, and the member / group / event it is for."""

    kind: FeedKind
    workspace: Workspace
    member: Member | None = None
    group: Group | None = None
    event_id: uuid.UUID | None = None
    event_title: str | None = None

    @property
    def name(self) -> str:
        if self.event_title is not None:
            return f"{self.workspace.name}: {self.event_title}"
        if self.member is not None:
            return f"{self.workspace.name}: {self.member.name}"
        if self.group is not None:
            return f"{self.workspace.name}: {self.group.name}"
        return self.workspace.name


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


@lru_cache(maxsize=256)
def vtimezone(name: str) -> Timezone:
    # Building a VTIMEZONE walks the zone's transitions; each zone is built once per process.
    return Timezone.from_tzid(name, first_date=date(2000, 1, 1), last_date=date(2040, 1, 1))


def _local(event: Event, instant: datetime) -> datetime | date:
    if event.all_day:
        return instant.astimezone(ZoneInfo(event.timezone)).date()
    if event.timezone in _UTC_NAMES:
        return instant.astimezone(UTC)
    return instant.astimezone(ZoneInfo(event.timezone))


# Serialised VEVENTs by everything that shapes them. icalendar takes ~1 ms per event, so a feed
# rebuilt after one change re-serialises that one event only. Bounded by bytes held.
_VEVENTS: LRUCache[tuple[object, ...], tuple[bytes, frozenset[str]]] = LRUCache(
    maxsize=64 * 2**20, getsizeof=lambda value: len(value[0])
)


# Whole feeds by fingerprint: a calendar app that polls without If-None-Match (many do) gets the
# same bytes back for the price of the fingerprint query.
_BODIES: LRUCache[tuple[object, ...], bytes] = LRUCache(maxsize=128 * 2**20, getsizeof=len)


def clear_vevent_cache() -> None:
    """Forget every serialised VEVENT and feed (benchmarks use it to measure a cold build)."""
    _VEVENTS.clear()
    _BODIES.clear()


class FeedBuilder:
    """Turns events into VEVENTs; one instance per feed."""

    def __init__(
        self,
        feed: Feed,
        base_url: str,
        *,
        cache: bool = True,
        zone_component: Callable[[str], Timezone] = vtimezone,
    ) -> None:
        self.feed = feed
        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self.zone_component = zone_component
        self.calendar = Calendar()
        self.zones: set[str] = set()
        self.blobs: list[bytes] = []
        self.calendar.add("prodid", PRODID)
        self.calendar.add("version", "2.0")
        self.calendar.add("calscale", "GREGORIAN")
        self.calendar.add("method", "PUBLISH")
        self.calendar.add("x-wr-calname", feed.name)
        self.calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        self.calendar.add("x-published-ttl", "PT1H")

    def _common(self, vevent: VEvent, event: Event, answer: str | None) -> None:
        title = event.title
        member = self.feed.member
        if answer is not None and member is not None:
            words = _ANSWER_TEXT.get(member.locale, _ANSWER_TEXT["en"])
            title = f"{title} ({words[answer]})"
        vevent.add("uid", event.ics_uid or f"{event.id}@vestnik")
        vevent.add("summary", title)
        if event.description:
            vevent.add("description", event.description)
        if event.location:
            vevent.add("location", event.location)
        vevent.add("url", f"{self.base_url}/app/events/{event.id}")
        vevent.add("sequence", event.sequence)
        vevent.add("dtstamp", event.updated_at.astimezone(UTC))
        vevent.add("created", event.created_at.astimezone(UTC))
        vevent.add("last-modified", event.updated_at.astimezone(UTC))
        cancelled = event.status == EventStatus.cancelled.value or event.deleted_at is not None
        vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        if event.confirm_before_minutes is not None and member is not None:
            address = vCalAddress(
                f"mailto:{member.email}" if member.email else f"urn:uuid:{member.id}"
            )
            address.params["CN"] = member.name
            address.params["ROLE"] = "REQ-PARTICIPANT"
            address.params["PARTSTAT"] = _PARTSTAT.get(answer or "", "NEEDS-ACTION")
            address.params["RSVP"] = "TRUE"
            vevent.add("attendee", address, encode=False)
        if not cancelled:
            for minutes in event.reminder_offsets:
                alarm = Alarm()
                alarm.add("action", "DISPLAY")
                alarm.add("description", event.title)
                alarm.add("trigger", timedelta(minutes=-minutes))
                vevent.add_component(alarm)

    def _times(self, vevent: VEvent, event: Event, start: datetime, end: datetime) -> None:
        vevent.add("dtstart", _local(event, start))
        vevent.add("dtend", _local(event, end))

    def add(self, event: Event, overrides: list[EventOverride], answers: dict[str, str]) -> None:
        """Serialise the event (from the cache when nothing that shapes it changed)."""
        member = self.feed.member
        key = (
            event.id,
            event.sequence,
            event.updated_at,
            self.base_url,
            None if member is None else (member.id, member.name, member.email, member.locale),
            tuple(sorted(answers.items())),
            tuple(sorted((o.recurrence_id, o.starts_at, o.ends_at) for o in overrides)),
        )
        cached = _VEVENTS.get(key) if self.cache else None
        if cached is None:
            components = self._components(event, overrides, answers)
            zones = frozenset(
                {event.timezone}
                if not event.all_day and event.timezone not in _UTC_NAMES
                else set()
            )
            cached = (b"".join(c.to_ical() for c in components), zones)
            if self.cache:
                _VEVENTS[key] = cached
        self.blobs.append(cached[0])
        self.zones |= cached[1]

    def _components(
        self, event: Event, overrides: list[EventOverride], answers: dict[str, str]
    ) -> list[VEvent]:
        """The event's master VEVENT, plus one VEVENT per moved or answered occurrence."""
        out: list[VEvent] = []
        master = VEvent()
        self._common(master, event, answers.get("") if event.rrule is None else None)
        self._times(master, event, event.starts_at, event.ends_at)
        if event.rrule is not None:
            master.add("rrule", vRecur.from_ical(event.rrule))
            if event.exdates:
                master.add("exdate", [_local(event, d) for d in event.exdates])
        out.append(master)
        if event.rrule is None:
            return out
        moved = {o.recurrence_id: o for o in overrides if o.recurrence_id not in set(event.exdates)}
        answered = {
            rid: answers[occurrence_key(rid)]
            for rid in _answered_ids(answers)
            if rid not in set(event.exdates)
        }
        for rid in sorted(set(moved) | set(answered)):
            override = moved.get(rid)
            start = override.starts_at if override else rid
            end = override.ends_at if override else end_of(event, rid)
            vevent = VEvent()
            self._common(vevent, event, answered.get(rid))
            vevent.add("recurrence-id", _local(event, rid))
            self._times(vevent, event, start, end)
            out.append(vevent)
        return out

    def to_ical(self) -> bytes:
        """VCALENDAR properties, then a VTIMEZONE per zone used, then the events."""
        for name in sorted(self.zones):
            self.calendar.add_component(self.zone_component(name))
        head = bytes(self.calendar.to_ical())
        end = b"END:VCALENDAR\r\n"
        return head[: -len(end)] + b"".join(self.blobs) + end


def _answered_ids(answers: dict[str, str]) -> list[datetime]:
    return [datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for key in answers if key]


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
