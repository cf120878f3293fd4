"""Benchmark: the statistics dashboard of a workspace with 1,000,000 deliveries (target: < 300 ms).

Run: python bench/statistics_dashboard.py [--deliveries 1000000] [--runs 20]
Seeds one workspace with 2,000 members and enough broadcasts, spread over ~80 days, to make
``--deliveries`` delivery rows (95% sent, 3% failed, 2% unreachable) through the real triggers
that keep the daily rollup, then measures, through the ASGI app in this process (no network):
the per-day statistics JSON (30 days, and 90 days), the Mini App statistics page (four SVG charts,
recent broadcasts and events) and ``/metrics``. Baseline in the same run: the same calls for a
workspace with 1,000 deliveries; the ratio shows how the dashboard grows with history.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from pydantic import SecretStr
from sqlalchemy import insert, text

from api.app import create_app
from bench.arguments import bench_parser
from bench.seeding import insert_members
from core import kinds
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.migrate import upgrade
from core.settings import Settings
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import MemberRole
from core.teams.roles import builtin_role_id
from core.teams.workspaces import create_workspace

MEMBERS = 2000
SEED_BROADCASTS = text(
    """
    INSERT INTO broadcasts (id, workspace_id, audience, text, variants, buttons, send_at, status,
                            created_by, created_at)
    SELECT gen_random_uuid(), :ws, '{}', 'Broadcast ' || i, '{}', '[]',
           now() - i * interval '4 hours', 'scheduled', 'bench', now() - i * interval '4 hours'
    FROM generate_series(1, :n) AS i
    """
)
SEED_JOBS = text(
    """
    INSERT INTO jobs (id, workspace_id, broadcast_id, kind, occurrence, occurrence_start, due_at,
                      status, idempotency_key, attempts, created_at, updated_at)
    SELECT gen_random_uuid(), workspace_id, id, 'broadcast', '', send_at, send_at, 'done',
           'broadcast:' || id, 0, now(), now()
    FROM broadcasts WHERE workspace_id = :ws
    """
)
# One statement per broadcast batch, like the worker's batched inserts: the triggers see each.
SEED_DELIVERIES = text(
    """
    INSERT INTO deliveries (id, workspace_id, job_id, member_id, channel, status, attempts,
                            sent_at, created_at, last_error)
    SELECT gen_random_uuid(), :ws, s.job_id, s.member_id, 'telegram',
           CASE WHEN s.r < 0.95 THEN 'sent' WHEN s.r < 0.98 THEN 'failed' ELSE 'unreachable' END,
           1,
           CASE WHEN s.r < 0.95 THEN s.due_at + s.r * interval '10 minutes' END,
           s.due_at,
           CASE WHEN s.r >= 0.98 THEN 'Forbidden: bot was blocked by the user'
                WHEN s.r >= 0.95 THEN 'gave up after 5 attempts' END
    FROM (
        SELECT j.id AS job_id, j.due_at, m.id AS member_id, random() AS r
        FROM (SELECT id, due_at FROM jobs WHERE workspace_id = :ws ORDER BY due_at
              OFFSET :offset LIMIT :limit) AS j
        CROSS JOIN (SELECT id FROM members WHERE workspace_id = :ws LIMIT :members) AS m
    ) AS s
    """
)


async def workspace(sessions, name: str, telegram_id: int, deliveries: int):  # type: ignore[no-untyped-def]
    """A workspace, its lead (signs in to the Mini App) and ``deliveries`` delivery rows."""
    members = min(MEMBERS, deliveries)
    broadcasts = max(1, deliveries // members)
    async with sessions() as session:
        created = await create_workspace(session, name, "Europe/Moscow")
        ws = uuid.UUID(created.id)
        now = datetime.now(UTC)
        rows = [
            {
                "id": uuid.uuid4(),
                "workspace_id": ws,
                "name": f"Участник {i:05}",
                "timezone": "UTC",
                "created_at": now - timedelta(hours=i),
            }
            for i in range(members)
        ]
        lead = uuid.uuid4()
        rows.append(
            {
                "id": lead,
                "workspace_id": ws,
                "name": "Lena Lead",
                "timezone": "Europe/Moscow",
                "telegram_user_id": telegram_id,
                "created_at": now,
            }
        )
        await insert_members(session, rows)
        role = await builtin_role_id(session, ws, BuiltinRole.lead)
        await session.execute(
            insert(MemberRole), [{"member_id": lead, "role_id": role, "workspace_id": ws}]
        )
        await session.execute(SEED_BROADCASTS, {"ws": ws, "n": broadcasts})
        await session.execute(SEED_JOBS, {"ws": ws})
        await session.commit()
    step = 25
    t0 = time.perf_counter()
    for offset in range(0, broadcasts, step):
        async with sessions() as session:
            await session.execute(
                SEED_DELIVERIES,
                {"ws": ws, "offset": offset, "limit": step, "members": members},
            )
            await session.commit()
        done = min(offset + step, broadcasts) * members
        print(
            f"\r  {name}: {done:,} deliveries ({time.perf_counter() - t0:.0f} s)",
            end="",
            flush=True,
        )
    print()
    return created.owner_token.token


async def timings(client: httpx.AsyncClient, token: str, telegram_id: int, runs: int):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    signed = await client.get("/app/dev-login", params={"telegram_user_id": telegram_id})
    assert signed.status_code == 303, signed.text
    api = {"Authorization": f"Bearer {token}"}
    since = (datetime.now(UTC) - timedelta(days=89)).date().isoformat()
    calls = {
        "stats JSON, 30 days": lambda: client.get("/api/v1/stats/days", headers=api),
        "stats JSON, 90 days": lambda: client.get(
            "/api/v1/stats/days", params={"since": since}, headers=api
        ),
        "stats CSV, 90 days": lambda: client.get(
            "/api/v1/stats/days.csv", params={"since": since}, headers=api
        ),
        "Mini App statistics page": lambda: client.get("/app/stats"),
        "/metrics (all workspaces)": lambda: client.get("/metrics"),
    }
    out: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(runs + 3):
        for name, call in calls.items():
            t0 = time.perf_counter()
            response = await call()
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200, (name, response.status_code, response.text[:200])
            if i >= 3:  # warm-up runs are not counted
                out[name].append(elapsed)
    return out


async def main(deliveries: int, runs: int) -> None:
    kinds.install()
    with tempfile.TemporaryDirectory(prefix="vestnik-bench-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp))
        redis = EmbeddedRedis(Path(tmp) / "redis")
        url = postgres.start()
        redis_url = redis.start()
        engine = make_engine(url)
        try:
            await upgrade(engine)
            sessions = make_sessionmaker(engine)
            print(f"populating {deliveries:,} deliveries (and a 1,000-delivery baseline) …")
            big = await workspace(sessions, "big", 1, deliveries)
            small = await workspace(sessions, "small", 2, 1000)
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
                tallies = await conn.scalar(text("SELECT count(*) FROM delivery_tallies"))
                seconds = await conn.scalar(text("SELECT count(*) FROM send_seconds"))
            print(f"rollup rows: {tallies:,} day tallies, {seconds:,} busy seconds")
            settings = Settings(
                database_url=url,
                redis_url=redis_url,
                data_dir=Path(tmp),
                telegram_token=SecretStr("1:BENCH"),
                webapp_dev_login=True,
            )
            app = create_app(settings)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
                ) as client,
            ):
                measured = await timings(client, big, 1, runs)
                baseline = await timings(client, small, 2, runs)
            print(f"server time over {runs} runs (p50 / p99), {deliveries:,} deliveries vs 1,000:")
            for name, samples in measured.items():
                p50 = statistics.median(samples)
                p99 = statistics.quantiles(samples, n=100)[98]
                base = statistics.median(baseline[name])
                print(
                    f"  {name:<28} {p50:7.1f} ms / {p99:7.1f} ms   "
                    f"(1,000 deliveries: {base:6.1f} ms; ratio {p50 / base:4.1f}x)"
                )
        finally:
            await engine.dispose()
            redis.stop()
            postgres.stop()


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--deliveries", type=int, default=1_000_000, help="deliveries the dashboard counts"
    )
    parser.add_argument(
        "--runs", type=int, default=20, help="timed loads each, after 3 not counted"
    )
    args = parser.parse_args()
    asyncio.run(main(args.deliveries, args.runs))
