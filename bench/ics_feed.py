"""Benchmark: one member's calendar feed with 10,000 events (1,000 recurring).

Run: python bench/ics_feed.py [--events 10000] [--recurring 1000] [--runs 5]
Prints p50/p99 of the 304 path (the token and its feed's validator, one lookup, no calendar
built), of a cold build (empty caches), of a teammate's first build right after it (the VEVENTs
that name nobody already rendered; a quarter of the events ask for answers and name them), of a
build after one event changed (the others' VEVENTs cached), of an unchanged 200 (the body cached
by its validator), and of a naive build of the same calendar in the same run (a query per event,
no caches), with the ratios and each figure's goal.
Uses a throwaway embedded Postgres.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bench.arguments import bench_parser
from core import kinds
from core.audience.rule import AudienceRule
from core.calendar.feed import clear_caches, load_feed, open_feed, served_feed
from core.calendar.models import Feed, FeedKind, FeedToken
from core.calendar.tokens import rotate_feed
from core.calendar.vevents import FeedBuilder
from core.calendar.zones import vtimezone
from core.collector import settle_collector
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres
from core.events.models import Confirmation, Event, EventOverride
from core.migrate import upgrade
from core.teams.models import Member
from core.teams.permissions import system_actor
from core.teams.workspaces import create_workspace

ZONES = ["Europe/Moscow", "Europe/Berlin", "America/New_York"]
# On 2 idle cores, for the default feed of 10,000 events (the fast-reads issue).
GOALS_MS = {"304 path": 5, "cold build": 300, "one changed": 100, "200 unchanged": 5}
BASE_URL = "http://localhost:8000"


async def populate(
    session: AsyncSession, events: int, recurring: int
) -> tuple[uuid.UUID, str, str]:
    """The workspace, Anna's feed token and her teammate Boris's: both are in every event's
    audience; a quarter of the events ask for answers, and Anna has answered some."""
    created = await create_workspace(session, "Bench", "Europe/Moscow")
    ws = uuid.UUID(created.id)
    member_id, teammate = uuid.uuid4(), uuid.uuid4()
    await session.execute(
        insert(Member),
        [
            {"id": member_id, "workspace_id": ws, "name": "Anna", "timezone": "Europe/Moscow"},
            {"id": teammate, "workspace_id": ws, "name": "Boris", "timezone": "Europe/Moscow"},
        ],
    )
    audience = AudienceRule(members=[member_id, teammate]).model_dump(mode="json")
    start = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    rows = []
    for i in range(events):
        begins = start + timedelta(hours=3 * i)
        rows.append(
            {
                "id": uuid.uuid4(),
                "workspace_id": ws,
                "title": f"Event {i:05}",
                "description": "Agenda: numbers, plans, questions",
                "location": "Room 1",
                "timezone": ZONES[i % 3],
                "starts_at": begins,
                # The wall-clock start, as the API stores it for every timed event.
                "starts_local": begins.astimezone(ZoneInfo(ZONES[i % 3])).replace(tzinfo=None),
                "ends_at": begins + timedelta(hours=1),
                "rrule": "FREQ=WEEKLY;COUNT=52" if i < recurring else None,
                "exdates": [],
                "audience": audience,
                "reminder_offsets": [1440, 60],
                "confirm_before_minutes": 120 if i % 4 == 0 else None,
            }
        )
    await session.execute(insert(Event), rows)
    answers = [
        {
            "event_id": r["id"],
            "member_id": member_id,
            "occurrence": "",
            "workspace_id": ws,
            "answer": "going",
        }
        for r in rows[recurring::2]
        if r["confirm_before_minutes"] is not None
    ]
    if answers:
        await session.execute(insert(Confirmation), answers)
    tokens = []
    for who in (member_id, teammate):
        link = await rotate_feed(session, system_actor(ws), FeedKind.member, who, BASE_URL)
        tokens.append(link.url.rsplit("/", 1)[-1].removesuffix(".ics"))
    await session.commit()
    return ws, tokens[0], tokens[1]


async def naive_build(session: AsyncSession, feed: Feed, now: datetime) -> bytes:
    """The same calendar, built the obvious way: a query per event for its moves and answers,
    and each time zone converted from scratch."""
    from core.calendar.feed import _selection

    assert feed.member is not None
    events = list(
        await session.scalars(
            select(Event)
            .where(await _selection(session, feed, now))
            .order_by(Event.starts_at, Event.id)
        )
    )
    builder = FeedBuilder(
        feed,
        BASE_URL,
        cache=False,
        zone_text=lambda name: bytes(vtimezone.__wrapped__(name).to_ical()),
    )
    for event in events:
        overrides = list(
            await session.scalars(select(EventOverride).where(EventOverride.event_id == event.id))
        )
        answers = dict(
            (
                await session.execute(
                    select(Confirmation.occurrence, Confirmation.answer).where(
                        Confirmation.event_id == event.id, Confirmation.member_id == feed.member.id
                    )
                )
            ).all()
        )
        builder.add(event, overrides, answers)
    return builder.to_ical()


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


async def main(events: int, recurring: int, runs: int) -> None:
    kinds.install()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp))
        engine = make_engine(server.start())
        try:
            await upgrade(engine)
            sessions = make_sessionmaker(engine)
            async with sessions() as session:
                print(f"populating {events} events ({recurring} recurring) …", flush=True)
                _, token, teammate = await populate(session, events, recurring)
            settle_collector()  # as the API process does once it has started
            timings: dict[str, list[float]] = {
                "304 path": [],
                "cold build": [],
                "teammate's first": [],
                "one changed": [],
                "200 unchanged": [],
                "naive build": [],
            }
            size = 0
            for i in range(runs + 1):
                async with sessions() as session:
                    now = datetime.now(UTC)
                    t0 = time.perf_counter()
                    opened = await open_feed(session, token, False, now, BASE_URL)
                    t1 = time.perf_counter()
                    clear_caches()
                    body, _ = await served_feed(session, opened, BASE_URL, now)
                    t2 = time.perf_counter()
                    # Boris's feed, first built right after Anna's: what names nobody is hers too.
                    opened = await open_feed(session, teammate, False, now, BASE_URL)
                    theirs, _ = await served_feed(session, opened, BASE_URL, now)
                    t2b = time.perf_counter()
                    await session.commit()
                    # One event changes (as an edit does: its SEQUENCE and updated_at move).
                    await session.execute(
                        update(Event)
                        .where(Event.id == select(Event.id).limit(1).scalar_subquery())
                        .values(
                            title=f"Changed {i}",
                            sequence=Event.sequence + 1,
                            updated_at=datetime.now(UTC),
                        )
                    )
                    await session.commit()
                    t3 = time.perf_counter()
                    opened = await open_feed(session, token, False, now, BASE_URL)
                    changed, _ = await served_feed(session, opened, BASE_URL, now)
                    t4 = time.perf_counter()
                    opened = await open_feed(session, token, False, now, BASE_URL)
                    served, _ = await served_feed(session, opened, BASE_URL, now)
                    t5 = time.perf_counter()
                    feed = await load_feed(
                        session, await session.get_one(FeedToken, opened.token_id)
                    )
                    naive = await naive_build(session, feed, now)
                    t6 = time.perf_counter()
                    await session.commit()
                assert changed == naive == served, "every build must produce the same calendar"
                assert body != changed and f"Changed {i}".encode() in changed
                assert len(theirs) < len(body)  # Anna's answers are hers alone
                size = len(body)
                if i:  # the first run warms the VTIMEZONE cache and the connection pool
                    check = t1 - t0
                    timings["304 path"].append(check * 1000)
                    timings["cold build"].append((t2 - t0) * 1000)
                    timings["teammate's first"].append((t2b - t2) * 1000)
                    timings["one changed"].append((t4 - t3) * 1000)
                    timings["200 unchanged"].append((t5 - t4) * 1000)
                    timings["naive build"].append((check + t6 - t5) * 1000)
            print(f"feed: {events} events, {size / 1e6:.1f} MB of iCalendar; {runs} runs each")
            stats = {name: summary(s) for name, s in timings.items()}
            for name, (p50, p99) in stats.items():
                goal = f"   goal p50 < {GOALS_MS[name]:g} ms" if name in GOALS_MS else ""
                print(f"  {name:<16} p50 {p50:9.1f} ms   p99 {p99:9.1f} ms{goal}")
            naive_p50 = stats["naive build"][0]
            for name in (
                "cold build",
                "teammate's first",
                "one changed",
                "200 unchanged",
                "304 path",
            ):
                print(f"  ratio naive / {name:<16} at p50: {naive_p50 / stats[name][0]:8.1f}x")
        finally:
            await engine.dispose()
            server.stop()


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument("--events", type=int, default=10_000, help="events in the feed")
    parser.add_argument("--recurring", type=int, default=1_000, help="of them, series")
    parser.add_argument("--runs", type=int, default=5, help="timed builds of each kind")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.recurring, args.runs))
