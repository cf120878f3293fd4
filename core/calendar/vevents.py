"""Rendering events as iCalendar VEVENTs (RFC 5545), with a cache of what was rendered before."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from cachetools import LRUCache
from icalendar import Calendar, vRecur, vText

from core.calendar import ics_text as ics
from core.calendar.zones import Transition, transitions, vtimezone_text
from core.clock import utcnow
from core.events.confirmations import occurrence_key, recurrence_id_of
from core.events.models import Answer, Event, EventOverride, EventStatus
from core.events.occurrences import end_of
from core.events.recurrence import Recurrence, usable_rule

if TYPE_CHECKING:
    from core.calendar.models import Feed

REFRESH = timedelta(hours=1)
PRODID = "-//vestnik//vestnik calendar feed//EN"
_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT"}
_PARTSTAT = {
    Answer.going.value: "ACCEPTED",
    Answer.not_going.value: "DECLINED",
    Answer.maybe.value: "TENTATIVE",
}
_NO_ANSWER = "NEEDS-ACTION"
_CANCELLED = EventStatus.cancelled.value  # rows give the status as its text
_ANSWER_TEXT = {
    "en": {"going": "going", "not_going": "not going", "maybe": "maybe"},
    "ru": {"going": "иду", "not_going": "не иду", "maybe": "возможно"},
}


def _local(event: Event, instant: datetime, exact: bool = True) -> datetime | date:
    """DTSTART/DTEND of one instant: the event's local time, unless that wall time happens twice
    (a fall-back day) and the instant is the second one, which every reader of a TZID time would
    take for the first: then UTC. Not for a series' own start (``exact=False``): a UTC DTSTART
    would make its RRULE repeat in UTC instead of wall-clock time."""
    if event.all_day:
        return instant.astimezone(ZoneInfo(event.timezone)).date()
    if event.timezone in _UTC_NAMES:
        return instant.astimezone(UTC)
    local = instant.astimezone(ZoneInfo(event.timezone))
    return instant.astimezone(UTC) if local.fold and exact else local


def _rule_time(event: Event, recurrence: Recurrence | None, instant: datetime) -> datetime | date:
    """EXDATE and RECURRENCE-ID of an occurrence: the wall time the rule itself produces (in a DST
    gap that is the nonexistent time, 02:30, not the 03:30 the instant reads as), so that readers
    match it against their own expansion of the rule."""
    wall = recurrence.wall_time(instant) if recurrence is not None and not event.all_day else None
    if wall is None or event.timezone in _UTC_NAMES:
        return _local(event, instant)
    return wall.replace(tzinfo=ZoneInfo(event.timezone), fold=0)


# Serialised VEVENTs by everything that shapes them: a feed rebuilt after one change writes that
# one event only. Bounded by bytes held.
_VEVENTS: LRUCache[str, tuple[bytes, str]] = LRUCache(
    maxsize=64 * 2**20, getsizeof=lambda value: len(value[0])
)


# The shapes (see FeedBuilder) of the feeds built with the cache since it was last cleared: a feed
# of a shape not there has none of its own VEVENTs cached, and reads its events in one step (those
# it shares with other feeds are still taken from the cache). Forgotten in full past a bound (a
# feed of a shape forgotten is then read whole once more, as on a first build).
_SHAPES: set[str] = set()
_MOST_SHAPES = 100_000


def clear_vevent_cache() -> None:
    """Forget every serialised VEVENT (benchmarks use it to measure a cold build)."""
    _VEVENTS.clear()
    _SHAPES.clear()


class FeedBuilder:
    """Turns events into VEVENTs; one instance per feed."""

    def __init__(
        self,
        feed: Feed,
        base_url: str,
        *,
        cache: bool = True,
        zone_text: Callable[[str], bytes] = vtimezone_text,
        now: datetime | None = None,
    ) -> None:
        self.feed = feed
        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self.zone_text = zone_text
        # Occurrences on DST change days are spelled out around now (see _shaky); by the month,
        # so cached VEVENTs stay valid for weeks.
        self.month = (now or utcnow()).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        member = feed.member
        # What every cached VEVENT of this feed shares: the links, the member (ATTENDEE, the
        # answer's words), the month (DST days near now). Without the member, what VEVENTs that
        # name nobody share with every other feed (a group's, and other members' events that
        # neither ask nor were answered).
        about = None if member is None else (member.id, member.name, member.email, member.locale)
        self._shape = _digest((self.base_url, about, self.month))
        self._anyone = _digest((self.base_url, None, self.month))
        # The ends of the keys of events neither moved nor answered (``key``), by whether the
        # event asks for answers.
        self._naming_nobody = f"|{self._anyone}"
        self._asking = f"|{self._anyone if member is None else self._shape}"
        # The URL line but the event's id (36 characters): most base URLs leave it one line.
        self._url = f"URL:{self.base_url}/app/events/"
        self._url_fits = self._url.isascii() and len(self._url) + 36 <= ics.LIMIT
        # The member's ATTENDEE line by PARTSTAT, folded once here (it is longer than a line
        # holds, and would have every VEVENT that asks for an answer folded line by line), and
        # their words for answers.
        self._attendee: dict[str, str] = {}
        self._answer_words: dict[str, str] | None = None
        if member is not None:
            address = f"mailto:{member.email}" if member.email else f"urn:uuid:{member.id}"
            cn = ics.param(_param_text(member.name))
            for partstat in (*_PARTSTAT.values(), _NO_ANSWER):
                line = f"ATTENDEE;CN={cn};PARTSTAT={partstat};ROLE=REQ-PARTICIPANT;RSVP=TRUE:"
                self._attendee[partstat] = ics.fold(line + address).decode()
            self._answer_words = _ANSWER_TEXT.get(member.locale, _ANSWER_TEXT["en"])
        self.calendar = Calendar()
        self.zones: set[str] = set()
        self.blobs: list[bytes] = []
        self.calendar.add("prodid", PRODID)
        self.calendar.add("version", "2.0")
        self.calendar.add("calscale", "GREGORIAN")
        self.calendar.add("method", "PUBLISH")
        self.calendar.add("x-wr-calname", vText(feed.name))  # escaped, as SUMMARY is
        self.calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        self.calendar.add("x-published-ttl", "PT1H")

    def _shared(self, event: Event, event_id: str) -> _Shared:
        """What every VEVENT of the event writes alike, built once per event (not once per
        VEVENT: a series' moved, answered and DST-day occurrences repeat it) as CRLF-ended text."""
        title = ics.text(event.title)
        cancelled = event.status == _CANCELLED or event.deleted_at is not None
        changed = ics.utc_value(event.updated_at)
        # Most events were never edited: created is then changed, written once.
        created = changed if event.created_at == event.updated_at else None
        middle = ics.line(f"DESCRIPTION:{ics.text(event.description)}") if event.description else ""
        if event.location:
            middle += ics.line(f"LOCATION:{ics.text(event.location)}")
        url = self._url + event_id
        middle += f"{url}\r\n" if self._url_fits else ics.line(url)
        middle += (
            f"SEQUENCE:{event.sequence}\r\n"
            f"DTSTAMP:{changed}\r\n"
            f"CREATED:{created or ics.utc_value(event.created_at)}\r\n"
            f"LAST-MODIFIED:{changed}\r\n"
            f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}\r\n"
        )
        alarms = ""
        if not cancelled and event.reminder_offsets:
            alarms = ics.line(f"DESCRIPTION:{title}").join(_alarms(tuple(event.reminder_offsets)))
        # Ours is 48 characters with nothing to escape; an imported one is written as given.
        uid = (
            ics.line(f"UID:{ics.text(event.ics_uid)}")
            if event.ics_uid
            else f"UID:{event_id}@vestnik\r\n"
        )
        asks = event.confirm_before_minutes is not None and self.feed.member is not None
        summary = f"SUMMARY:{title}"
        return _Shared(uid, summary, ics.line(summary), middle, alarms, asks)

    def _vevent(self, shared: _Shared, answer: str | None, times: str) -> str:
        """One VEVENT: the shared lines, the member's answer (in SUMMARY and ATTENDEE) and its
        own times (DTSTART and the rest, each line ending CRLF)."""
        summary = shared.summary_line
        if answer is not None and self._answer_words is not None:
            summary = ics.line(shared.summary + ics.text(f" ({self._answer_words[answer]})"))
        attendee = ""
        if shared.asks:
            attendee = self._attendee[_PARTSTAT.get(answer or "", _NO_ANSWER)]
        return (
            f"BEGIN:VEVENT\r\n{shared.uid}{summary}{shared.middle}{attendee}{times}"
            f"{shared.alarms}END:VEVENT\r\n"
        )

    def _times(self, event: Event, start: datetime, end: datetime, exact: bool = True) -> str:
        if not event.all_day and event.timezone not in _UTC_NAMES:
            # Most VEVENTs: both times in the event's zone, written as `_local` and `ics.when`
            # would (a fifth of a one-off event's rendering went to calling them), unless one
            # is the second of two equal wall times, which `_local` writes in UTC.
            zone = ZoneInfo(event.timezone)
            local_start, local_end = start.astimezone(zone), end.astimezone(zone)
            if not (exact and (local_start.fold or local_end.fold)):
                tzid = f";TZID={event.timezone}:"
                start_line = f"DTSTART{tzid}{ics.wall(local_start)}"
                end_line = f"DTEND{tzid}{ics.wall(local_end)}"
                if len(start_line) <= ics.LIMIT and tzid.isascii():  # zone names are short
                    return f"{start_line}\r\n{end_line}\r\n"
                return ics.line(start_line) + ics.line(end_line)
        return ics.line(ics.when("DTSTART", _local(event, start, exact))) + ics.line(
            ics.when("DTEND", _local(event, end, exact))
        )

    def key(self, version: str, overrides: list[EventOverride], answers: dict[str, str]) -> str:
        """Everything that shapes an event's VEVENTs in this feed (its cache key): ``version`` is
        the event's id, sequence and updated_at as Postgres writes them, and whether it asks for
        answers (``feed._EVENT_VERSION``; an edit moves the middle two; formatting them here took
        22 ms for 10,000 events), the rest is the feed's and the occurrences'. An event that
        neither asks this member for an answer nor was answered by them names nobody: its key is
        every feed's, and a team's feeds render it once between them. A string, which the
        garbage collector does not walk (a cache of tuples it did, for tens of milliseconds at
        a time)."""
        if answers:
            key = f"{version}|{self._shape}|{sorted(answers.items())}"
        else:  # most events: one concatenation
            key = version + (self._asking if version[-1] == "?" else self._naming_nobody)
        if overrides:
            key += f"|{sorted((o.recurrence_id, o.starts_at, o.ends_at) for o in overrides)}"
        return key

    @property
    def cold(self) -> bool:
        """Whether nothing this feed shows can be in the cache: no feed of its shape was built,
        nor any feed whose VEVENTs that name nobody it could share."""
        return not self.cache or (self._shape not in _SHAPES and self._anyone not in _SHAPES)

    def lookup(self, key: str) -> tuple[bytes, str] | None:
        """An event's cached VEVENTs (and the zone they need), if there."""
        if not self.cache:
            return None
        try:  # one call into the cache where ``get`` makes two (a rebuild looks up every event)
            return _VEVENTS[key]
        except KeyError:
            return None

    def take(self, found: tuple[bytes, str]) -> None:
        """Add VEVENTs found in the cache."""
        self.blobs.append(found[0])
        if found[1]:
            self.zones.add(found[1])

    def add(
        self,
        event: Event,
        overrides: list[EventOverride],
        answers: dict[str, str],
        key: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """Serialise the event, and with its cache ``key`` put it there. The caller has looked
        for it there (``lookup``) unless it cannot be (a cold feed's)."""
        zone = "" if event.all_day or event.timezone in _UTC_NAMES else event.timezone
        rendered = (self._render(event, overrides, answers, event_id or str(event.id)), zone)
        if self.cache and key is not None:
            _VEVENTS[key] = rendered
        self.blobs.append(rendered[0])
        if zone:
            self.zones.add(zone)

    def _render(
        self, event: Event, overrides: list[EventOverride], answers: dict[str, str], event_id: str
    ) -> bytes:
        """The event's master VEVENT, plus one VEVENT per moved or answered occurrence."""
        # A rule that fails today's checks (stored by an older vestnik) would hang calendar apps
        # as it would hang us: the event then shows as its first occurrence only.
        first = event.starts_local or event.starts_at
        recurrence = usable_rule(event.rrule, first, event.timezone, event.starts_at)
        shared = self._shared(event, event_id)
        if recurrence is None:
            times = self._times(event, event.starts_at, event.ends_at)
            return self._vevent(shared, answers.get(""), times).encode()
        if event.starts_local is not None and event.timezone not in _UTC_NAMES:
            # The series' own wall-clock start, even one the clock skips (a DST gap): readers
            # then repeat the same wall time, as RFC 5545 asks. Its length as a DURATION in hours
            # and minutes, which is exact (RFC 5545 3.3.6): readers that subtract wall times
            # would make a DTEND across a DST change an hour off.
            start = event.starts_local.replace(tzinfo=ZoneInfo(event.timezone))
            times = ics.line(ics.when("DTSTART", start))
            length = event.ends_at - event.starts_at
            if length < timedelta(days=1):
                times += f"DURATION:{ics.duration(length)}\r\n"
            else:  # "P1D" would be a nominal day
                times += ics.line(ics.when("DTEND", _local(event, event.ends_at, exact=False)))
        else:
            times = self._times(event, event.starts_at, event.ends_at, exact=False)
        assert event.rrule is not None
        shaky = self._shaky(event, recurrence)
        times += _rule_line(event.rrule)
        if event.exdates:
            exdates = [_rule_time(event, recurrence, d) for d in event.exdates]
            times += "".join(map(ics.line, ics.when_list("EXDATE", exdates)))
        text = self._vevent(shared, None, times)
        excluded = set(event.exdates)
        moved = {o.recurrence_id: o for o in overrides if o.recurrence_id not in excluded}
        answered = {
            rid: answers[occurrence_key(rid)]
            for rid in _answered_ids(answers)
            if rid not in excluded
        }
        for rid in sorted(set(moved) | set(answered) | shaky):
            override = moved.get(rid)
            start = override.starts_at if override else rid
            end = override.ends_at if override else end_of(event, rid)
            times = ics.line(ics.when("RECURRENCE-ID", _rule_time(event, recurrence, rid)))
            if override is None and rid in shaky:
                # In UTC: no reader can take it for another hour.
                times += f"{ics.utc('DTSTART', start)}\r\n{ics.utc('DTEND', end)}\r\n"
            else:
                times += self._times(event, start, end)
            text += self._vevent(shared, answered.get(rid), times)
        return text.encode()

    def _shaky(self, event: Event, recurrence: Recurrence) -> set[datetime]:
        """Occurrences from a month ago to a year ahead whose wall time the clock skips or shows
        twice, or during which the clock changes. RFC 5545 says how to read those (the offset
        before a gap; the first of two), but not every reader does (vobject takes the offset
        after a gap and the second of two), so each is repeated as an override at its exact UTC
        time, which every reader takes as is. (A zone that skipped a whole day, Apia on 30
        December 2011, makes that day's wall time land on the next day's instant: RFC 5545 counts
        the two as one.)"""
        if event.all_day or event.timezone in _UTC_NAMES:
            return set()
        zone = ZoneInfo(event.timezone)
        lo, hi = self.month - timedelta(days=31), self.month + timedelta(days=400)
        length = event.ends_at - event.starts_at
        # The widest change of offset tzdata has is a whole day; an occurrence also needs spelling
        # out when the clock changes while it runs (readers add its length in wall time).
        near = max(timedelta(hours=26), length)
        met = _changes_met(event.timezone, lo - near, hi + near, recurrence.time_of_day, length)
        if met is None:
            # No change of the clock in the window (Moscow, Tokyo), or the series starts hours
            # away from every change (10:00 vs 02:00).
            return set()
        changes, walls_near = met
        excluded = set(event.exdates)
        found: set[datetime] = set()
        for wall, instant in recurrence.walls_between(max(lo, event.starts_at), hi, walls_near):
            at = bisect.bisect_left(changes, instant - near, key=_instant)
            if instant in excluded or at == len(changes) or changes[at].at > instant + near:
                continue  # no change of the clock anywhere near: the wall time is plain
            naive = wall.replace(tzinfo=None)
            doubtful = (
                naive.replace(tzinfo=zone, fold=0).utcoffset()
                != naive.replace(tzinfo=zone, fold=1).utcoffset()
            )
            spans_change = (
                instant.astimezone(zone).utcoffset()
                != (instant + length).astimezone(zone).utcoffset()
            )
            if doubtful or spans_change:
                found.add(instant)
        return found

    def to_ical(self) -> bytes:
        """VCALENDAR properties, then a VTIMEZONE per zone used, then the events. The feed's
        VEVENTs are all in the cache by now (rendered or taken from it)."""
        if self.cache and not {self._shape, self._anyone} <= _SHAPES:
            if len(_SHAPES) >= _MOST_SHAPES:
                _SHAPES.clear()
            _SHAPES.update((self._shape, self._anyone))
        head = bytes(self.calendar.to_ical())
        end = b"END:VCALENDAR\r\n"
        zones = b"".join(self.zone_text(name) for name in sorted(self.zones))
        return head[: -len(end)] + zones + b"".join(self.blobs) + end


class _Shared(NamedTuple):
    # Each a run of whole content lines, folded, unless said.
    uid: str
    summary: str  # SUMMARY with the title, not folded nor ended: an answer may follow the title
    summary_line: str  # the same as a line, for occurrences without an answer
    middle: str  # DESCRIPTION … STATUS
    alarms: str  # the VALARMs
    asks: bool  # whether it has an ATTENDEE (the event asks the member to confirm)


def _digest(shape: tuple[object, ...]) -> str:
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:24]


@lru_cache(maxsize=256)  # a few sets of reminder offsets, repeated across every event
def _alarms(offsets: tuple[int, ...]) -> tuple[str, ...]:
    """The VALARMs of these offsets, split where each says the event's title (its DESCRIPTION
    line): joined by that line, they are the event's alarms."""
    begin = "BEGIN:VALARM\r\nACTION:DISPLAY\r\n"
    ends = [f"TRIGGER:{ics.duration(timedelta(minutes=-m))}\r\nEND:VALARM\r\n" for m in offsets]
    return (begin, *(end + begin for end in ends[:-1]), ends[-1])


@lru_cache(maxsize=4096)  # teams repeat a few rules ("every week") across many events
def _rule_line(rule: str) -> str:
    """The RRULE line, in icalendar's canonical spelling of the stored rule, folded."""
    canonical: bytes = vRecur.from_ical(rule).to_ical()
    return ics.line("RRULE:" + canonical.decode())


@lru_cache(maxsize=4096)  # a few zones, times of day and lengths across a team's series
def _changes_met(
    zone: str, start: datetime, end: datetime, time_of_day: time, length: timedelta
) -> tuple[tuple[Transition, ...], Callable[[datetime], bool]] | None:
    """The zone's changes of the clock in [start, end) if a series at ``time_of_day`` lasting
    ``length`` can meet one (``_may_meet``), else None; and a test of a wall time (naive) that
    keeps those that can be near one: an occurrence within ``near`` of a change at instant C
    reads at most a day (the widest change) more than that from C's wall time before the change;
    two days, should two changes be that close."""
    changes = _offset_changes(zone, start, end)
    if not changes or not _may_meet(time_of_day, length, changes):
        return None
    reach = max(timedelta(hours=26), length) + timedelta(days=2)
    walls = sorted((c.at + c.before).replace(tzinfo=None) for c in changes)

    def near_a_change(wall: datetime) -> bool:
        at = bisect.bisect_left(walls, wall - reach)
        return at < len(walls) and walls[at] <= wall + reach

    return changes, near_a_change


def _may_meet(start: time, length: timedelta, changes: tuple[Transition, ...]) -> bool:
    """Whether a series starting each time at wall time ``start`` and lasting ``length`` can have
    an occurrence that is shaky around one of these changes of the clock. An occurrence at wall
    time W is at W - offset, with the offset before or after the change; it is shaky when that
    instant is at most ``length`` before the change (it runs across it) or W is skipped or shown
    twice (between the change's wall times under the two offsets): in all, when W is in
    (low - length, high], low and high being those wall times."""
    of_day = timedelta(hours=start.hour, minutes=start.minute, seconds=start.second)
    of_day += timedelta(microseconds=start.microsecond)
    for change in changes:
        wall = change.at.replace(tzinfo=None)
        since = wall + min(change.before, change.after) - length
        width = wall + max(change.before, change.after) - since
        if width >= timedelta(days=1):
            return True
        since_midnight = since - since.replace(hour=0, minute=0, second=0, microsecond=0)
        # The first W at or after the window's start, counted from it (its ends included: where
        # in doubt, spell the occurrence out).
        if (of_day - since_midnight) % timedelta(days=1) <= width:
            return True
    return False


def _instant(change: Transition) -> datetime:
    return change.at


@lru_cache(maxsize=1024)
def _offset_changes(zone: str, start: datetime, end: datetime) -> tuple[Transition, ...]:
    """The zone's changes of UTC offset in [start, end), in order."""
    return tuple(t for t in transitions(ZoneInfo(zone), start, end) if t.before != t.after)


def _param_text(value: str) -> str:
    """A parameter value cannot hold control characters or a double quote (RFC 5545 3.1)."""
    return "".join(" " if ch < " " or ch == "\x7f" else ch for ch in value).replace('"', "'")


def _answered_ids(answers: dict[str, str]) -> list[datetime]:
    return [rid for key in answers if (rid := recurrence_id_of(key)) is not None]
