"""Benchmark: journeys at scale. Prints figures; asserts nothing about time.

Run: python bench/journeys.py [--members 100000] [--due 10000] [--log-rows 1000000]
1. ``--members`` members get a tag in bulk (API-sized chunks of 10,000), which enters them all
   into a journey whose first step sends a message: the time until every step-1 message is
   queued (a job per member), against a naive loop (one member at a time: enter, commit, carry,
   commit) over a fiftieth of them in the same run.
2. ``--due`` runs whose waits end within one minute, carried by one worker's loop: lateness of
   each step transition (started − due), p50 / p99 / max.
3. The statistics of a journey with ``--log-rows`` run-log rows: the tallies-based page against
   the same figures computed from the log (GROUP BY and percentile over the rows).
Uses a throwaway embedded Postgres.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bench.arguments import bench_parser
from core import kinds
from core.clock import utcnow
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres
from core.journeys import runs
from core.journeys.models import Journey, JourneyLog, JourneyRun, JourneyStatus
from core.journeys.runner import advance_due
from core.journeys.service import JourneyIn, create_journey, set_status
from core.journeys.stats import journey_stats
from core.migrate import upgrade
from core.teams.permissions import system_actor
from core.teams.schemas import MemberIds, TagCreate
from core.teams.tags import create_tag, tag_members
from core.teams.workspaces import create_workspace

SEED_MEMBERS = text(
    """
    INSERT INTO members (id, workspace_id, name, timezone, locale, preferred_time, status,
                         created_at, updated_at)
    SELECT gen_random_uuid(), :ws, 'Member ' || i, 'Europe/Berlin', 'en', 'day', 'active',
           now(), now()
    FROM generate_series(1, :n) AS i
    """
)
NAIVE_STATS = text(
    """
    SELECT step_key, action, count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at)) AS p50
    FROM journey_log WHERE journey_id = :j GROUP BY step_key, action
    """
)


def _journey(name: str, trigger: dict[str, object]) -> JourneyIn:
    return JourneyIn.model_validate(
        {
            "name": name,
            "trigger": trigger,
            "steps": [
                {"key": "hello", "type": "send", "message": {"text": "Hello!"}},
                {"key": "later", "type": "wait", "minutes": 1440},
                {"key": "bye", "type": "send", "message": {"text": "Bye!"}},
            ],
        }
    )


async def _drain(sessions, owner: str) -> None:  # type: ignore[no-untyped-def]
    while await advance_due(sessions, owner, utcnow, limit=500):
        pass


async def main(members: int, due: int, log_rows: int) -> None:
    kinds.install()
    with tempfile.TemporaryDirectory(prefix="vestnik-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp))
        engine = make_engine(postgres.start(), pool_size=5)
        try:
            await upgrade(engine)
            sessions = make_sessionmaker(engine)
            async with sessions() as session:
                created = await create_workspace(session, "bench", "UTC")
                ws_id = uuid.UUID(created.id)
                await session.execute(
                    text("UPDATE workspaces SET member_hourly_cap = NULL, member_daily_cap = NULL")
                )
                await session.execute(SEED_MEMBERS, {"ws": ws_id, "n": members})
                actor = system_actor(ws_id, "bench")
                tag = await create_tag(session, actor, TagCreate(name="cohort"))
                trigger = {"type": "tag_added", "tag_id": str(tag.id)}
                big = await create_journey(session, actor, _journey("Bulk", trigger))
                await set_status(session, actor, big.id, JourneyStatus.active, utcnow())
                await session.commit()
                ids = list(await session.scalars(text("SELECT id FROM members")))
            print(f"1. {members:,} members tagged in bulk enter a journey; step 1 queued for all:")
            t0 = time.perf_counter()
            for start in range(0, len(ids), 10_000):
                async with sessions() as session:
                    chunk = MemberIds(member_ids=ids[start : start + 10_000])
                    await tag_members(session, actor, tag.id, chunk)
                    await session.commit()
            entered = time.perf_counter() - t0
            await _drain(sessions, "bench")
            total = time.perf_counter() - t0
            async with engine.connect() as conn:
                jobs = await conn.scalar(text("SELECT count(*) FROM jobs"))
            assert jobs == members, jobs
            rate = members / total
            print(
                f"   entered in {entered:.1f} s; all {jobs:,} messages queued in {total:.1f} s "
                f"({rate:,.0f} members/s)"
            )
            sample = ids[: max(members // 50, 100)]
            async with sessions() as session:
                naive = await create_journey(session, actor, _journey("Naive", {"type": "manual"}))
                await set_status(session, actor, naive.id, JourneyStatus.active, utcnow())
                await session.commit()
            t0 = time.perf_counter()
            for member_id in sample:
                async with sessions() as session:
                    journey = await session.get_one(Journey, naive.id)
                    await runs.enter(session, journey, [member_id], f"naive:{member_id}", utcnow())
                    await session.commit()
                await advance_due(sessions, "naive", utcnow, limit=1)
            naive_rate = len(sample) / (time.perf_counter() - t0)
            print(
                f"   naive loop over {len(sample):,} members: {naive_rate:,.0f} members/s "
                f"(ratio {rate / naive_rate:.1f}x)"
            )

            print(f"2. {due:,} runs whose waits end within one minute, one worker's loop:")
            async with sessions() as session:
                now = utcnow()
                chosen = list(
                    await session.scalars(
                        select(JourneyRun.id)
                        .where(JourneyRun.journey_id == big.id, JourneyRun.step_key == "later")
                        .limit(due)
                    )
                )
                await session.execute(
                    text(
                        "UPDATE journey_runs SET next_at = CAST(:now AS timestamptz) + (random() * interval '60 s') "
                        "+ interval '2 s' WHERE id = ANY(:ids)"
                    ),
                    {"now": now, "ids": chosen},
                )
                await session.commit()
                wanted = dict(
                    (r, n)
                    for r, n in await session.execute(
                        select(JourneyRun.id, JourneyRun.next_at).where(JourneyRun.id.in_(chosen))
                    )
                )
            stop = utcnow() + timedelta(seconds=75)
            while utcnow() < stop:
                if await advance_due(sessions, "loop", utcnow, limit=200) < 200:
                    await asyncio.sleep(0.25)
            async with sessions() as session:
                rows = await session.execute(
                    select(JourneyLog.run_id, JourneyLog.at).where(
                        JourneyLog.run_id.in_(chosen),
                        JourneyLog.step_key == "bye",
                        JourneyLog.action == "entered",
                    )
                )
                late = sorted((at - wanted[run]).total_seconds() for run, at in rows)
            p99 = statistics.quantiles(late, n=100)[98]
            print(
                f"   {len(late):,} transitions; lateness p50 {statistics.median(late):.2f} s, "
                f"p99 {p99:.2f} s, max {late[-1]:.2f} s"
            )

            print(f"3. statistics over {log_rows:,} run-log rows:")
            async with engine.begin() as conn:
                existing = await conn.scalar(text("SELECT count(*) FROM journey_log"))
                extra = max(0, log_rows - existing)
                await conn.execute(
                    text(
                        "INSERT INTO journey_log (workspace_id, journey_id, run_id, member_id, "
                        "step_key, visit, action, detail, at) "
                        "SELECT r.workspace_id, r.journey_id, r.id, r.member_id, 'later', 2, "
                        "'held', '{}', now() - (g * interval '1 s') FROM journey_runs r, "
                        "generate_series(1, :per) g WHERE r.journey_id = :j"
                    ),
                    {"per": max(1, -(-extra // members)), "j": big.id},  # ceil: at least --log-rows
                )
                await conn.execute(text("ANALYZE"))
                rows_now = await conn.scalar(text("SELECT count(*) FROM journey_log"))
            fast, slow = [], []
            for _ in range(7):
                async with sessions() as session:
                    t0 = time.perf_counter()
                    await journey_stats(session, actor, big.id, utcnow())
                    fast.append(time.perf_counter() - t0)
                async with engine.connect() as conn:
                    t0 = time.perf_counter()
                    await conn.execute(NAIVE_STATS, {"j": big.id})
                    slow.append(time.perf_counter() - t0)
            f, s = statistics.median(fast[2:]) * 1000, statistics.median(slow[2:]) * 1000
            print(
                f"   {rows_now:,} log rows: statistics page {f:.1f} ms; from the log {s:.1f} ms "
                f"(ratio {s / f:.1f}x)"
            )
        finally:
            await engine.dispose()
            postgres.stop()


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--members", type=int, default=100_000, help="members entering a journey at once"
    )
    parser.add_argument("--due", type=int, default=10_000, help="steps due at once")
    parser.add_argument(
        "--log-rows", type=int, default=1_000_000, help="run-log rows the statistics read"
    )
    args = parser.parse_args()
    asyncio.run(main(args.members, args.due, args.log_rows))
