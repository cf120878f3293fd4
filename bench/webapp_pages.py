"""Benchmark: Mini App pages a lead opens, server time, with 5,000 members (target: < 200 ms).

Run: python bench/webapp_pages.py [--members 5000] [--events 60] [--runs 30]
Measures, through the ASGI app in this process (no network): the lead's home (their events and
the team's), the "Who is coming" board of an event for everyone, the people list (first page, a
search, a group filter), the event editor, and the picker's live audience count for all groups. Baseline in the same run: the same pages for a 50-member workspace; the
ratio shows how the pages grow with the team. Uses a throwaway embedded Postgres.
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
from sqlalchemy import insert

from api.app import create_app
from bench.arguments import bench_parser
from bench.seeding import insert_members
from core import kinds
from core.audience.rule import AudienceRule
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.events.schemas import EventCreate
from core.events.service import create_event
from core.migrate import upgrade
from core.settings import Settings
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import Group, MemberGroup, MemberRole
from core.teams.permissions import system_actor
from core.teams.roles import builtin_role_id
from core.teams.workspaces import create_workspace

LEAD_TELEGRAM_ID = 1


async def workspace(
    sessions, name: str, members: int, events: int
) -> tuple[list[uuid.UUID], uuid.UUID]:  # type: ignore[no-untyped-def]
    """A workspace of ``members`` in 20 groups, a lead (in every group) and ``events`` events
    that ask for answers; returns the group ids and one event id."""
    async with sessions() as session:
        created = await create_workspace(session, name, "Europe/Moscow")
        ws = uuid.UUID(created.id)
        groups = [Group(workspace_id=ws, name=f"group {i}") for i in range(20)]
        session.add_all(groups)
        await session.flush()
        rows = [
            {"id": uuid.uuid4(), "workspace_id": ws, "name": f"Member {i:05}", "timezone": "UTC"}
            for i in range(members)
        ]
        lead = uuid.uuid4()
        rows.append(
            {
                "id": lead,
                "workspace_id": ws,
                "name": "Lena Lead",
                "timezone": "Europe/Moscow",
                "telegram_user_id": LEAD_TELEGRAM_ID if name == "big" else LEAD_TELEGRAM_ID + 1,
            }
        )
        await insert_members(session, rows)
        links = [
            {"group_id": groups[i % 20].id, "member_id": r["id"], "workspace_id": ws}
            for i, r in enumerate(rows[:-1])
        ] + [{"group_id": g.id, "member_id": lead, "workspace_id": ws} for g in groups]
        for start in range(0, len(links), 5000):
            await session.execute(insert(MemberGroup), links[start : start + 5000])
        role = await builtin_role_id(session, ws, BuiltinRole.lead)
        await session.execute(
            insert(MemberRole), [{"member_id": lead, "role_id": role, "workspace_id": ws}]
        )
        await session.commit()
    first_event = None
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    for i in range(events):
        async with sessions() as session:
            out = await create_event(
                session,
                system_actor(ws),
                EventCreate(
                    title=f"Event {i}",
                    starts_at=start + timedelta(hours=i),
                    ends_at=start + timedelta(hours=i, minutes=45),
                    audience=AudienceRule(groups=[groups[i % 20].id, groups[(i + 1) % 20].id]),
                    confirmation_required=True,
                    confirm_before_minutes=60,
                ),
            )
            await session.commit()
            first_event = first_event or out.id
    assert first_event is not None
    return [g.id for g in groups], first_event


async def timings(
    client: httpx.AsyncClient,
    telegram_id: int,
    groups: list[uuid.UUID],
    event: uuid.UUID,
    runs: int,
) -> dict[str, list[float]]:
    client.cookies.clear()
    signed = await client.get("/app/dev-login", params={"telegram_user_id": telegram_id})
    assert signed.status_code == 303, signed.text
    home = await client.get("/app")
    csrf = home.text.split('"X-CSRF-Token": "')[1].split('"')[0]
    pages = {
        "lead's home": lambda: client.get("/app"),
        "board (who is coming)": lambda: client.get(f"/app/events/{event}/board"),
        "people list (first 50)": lambda: client.get("/app/people"),
        "people search (htmx rows)": lambda: client.get(
            "/app/people", params={"q": "member 04"}, headers={"HX-Request": "true"}
        ),
        "people in a group": lambda: client.get(
            "/app/people", params={"group": str(groups[3])}, headers={"HX-Request": "true"}
        ),
        "event editor": lambda: client.get(f"/app/events/{event}/edit"),
        "audience count, all groups": lambda: client.post(
            "/app/audience",
            data={"groups": [str(g) for g in groups]},
            headers={"X-CSRF-Token": csrf},
        ),
    }
    out: dict[str, list[float]] = {name: [] for name in pages}
    for i in range(runs + 3):
        for name, call in pages.items():
            t0 = time.perf_counter()
            response = await call()
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200, (name, response.status_code)
            if i >= 3:  # warm-up runs are not counted
                out[name].append(elapsed)
    return out


async def main(members: int, events: int, runs: int) -> None:
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
            print(
                f"populating {members} members and {events} events (and a 50-member baseline) …",
                flush=True,
            )
            big = await workspace(sessions, "big", members, events)
            small = await workspace(sessions, "small", 50, events)
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
                measured = await timings(client, LEAD_TELEGRAM_ID, *big, runs)
                baseline = await timings(client, LEAD_TELEGRAM_ID + 1, *small, runs)
            print(f"server time over {runs} runs (p50 / p99), {members} members vs 50:")
            for name, samples in measured.items():
                p50 = statistics.median(samples)
                p99 = statistics.quantiles(samples, n=100)[98]
                base = statistics.median(baseline[name])
                print(
                    f"  {name:<28} {p50:7.1f} ms / {p99:7.1f} ms   "
                    f"(50 members: {base:6.1f} ms; ratio {p50 / base:4.1f}x)"
                )
        finally:
            await engine.dispose()
            redis.stop()
            postgres.stop()


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument("--members", type=int, default=5000, help="members in the workspace")
    parser.add_argument("--events", type=int, default=60, help="events in the workspace")
    parser.add_argument("--runs", type=int, default=30, help="timed loads of each page")
    args = parser.parse_args()
    asyncio.run(main(args.members, args.events, args.runs))
