"""Benchmark: the REST API's read mix at fixed arrival rates (open loop), from a separate process.

Run: python bench/rest_load.py [--seconds 30] [--rates 35 100 200 300 500] [--workers 2]
                               [--writes 10]

Seeds one workspace (1,000 members in 10 groups and 5 tags, 200 events, a tenth of them
recurring) in a throwaway embedded Postgres, then serves the API two ways, each its own process
group against the same Postgres server (a process of its own):

- as `vestnik run` does: `vestnik api`, one process (the baseline);
- as production would: `vestnik api --workers N`.

For each rate, a driver process sends the mix (``GET /members?limit=50``, ``GET /events``,
``POST /audience/preview``, in turn) at that fixed arrival rate for the given seconds, whatever the
answers' speed: a request's latency runs from the instant it was *scheduled* to its answer, so
time waiting behind a slow server counts. Printed per rate: the rate achieved, p50 / p99 / max,
errors (non-2xx or no answer within 5 s), the CPU the driver used, and the CPU the API's
processes and Postgres's spent per request (steadier than latency on a shared machine); then the
highest rate whose p99 stays under 25 ms, per layout, against the goal (500 req/s). Nothing is
asserted.

The API keeps its answers to these reads by the stamp of the workspace's data (``core.reads``),
so a read-only mix is mostly answered from that cache. ``--writes N`` changes a member N times a
second beside the reads (``last_activity_at``, as the bot does whenever someone writes to it),
each change renewing the stamp: what a busy workspace's reads cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_RATE, GOAL_P99_MS = 500, 25.0
SETTLE_SECONDS = 2.0  # requests sent before measuring: connections opened, caches filled


# -- the driver (a process of its own) -----------------------------------------------------------
def _mix(groups: list[str], tags: list[str]) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/api/v1/members?limit=50", None),
        ("GET", "/api/v1/events", None),
        ("POST", "/api/v1/audience/preview", {"groups": groups[:3], "tags": tags[:1]}),
    ]


async def drive(
    url: str, token: str, rate: float, seconds: float, mix: list[Any]
) -> dict[str, Any]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=0)  # open loop: never wait for a free connection
    timeout = aiohttp.ClientTimeout(total=5)
    latencies: list[float] = []
    by_path: dict[str, list[float]] = {}
    errors = 0
    loop = asyncio.get_running_loop()
    settle = int(rate * SETTLE_SECONDS)
    total = settle + int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()

    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as client:

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            method, path, body = mix[i % len(mix)]
            ok = False
            try:
                async with client.request(method, path, json=body, timeout=timeout) as response:
                    await response.read()
                    ok = response.status < 300
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if i >= settle:
                latencies.append(loop.time() - scheduled)
                by_path.setdefault(f"{method} {path.split('?')[0]}", []).append(
                    loop.time() - scheduled
                )
                errors += not ok

        started = loop.time() + 0.2
        cpu_before = time.process_time()
        i = 0
        while i < total:
            now = loop.time()
            while i < total and started + i / rate <= now:
                task = loop.create_task(one(i, started + i / rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(min(0.002, max(0.0, started + i / rate - loop.time())))
        measured_from = started + settle / rate
        last_scheduled = started + (total - 1) / rate
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu_before
    latencies.sort()
    n = len(latencies)
    return {
        "rate": rate,
        "achieved": n / (last_scheduled - measured_from + 1 / rate),
        "p50_ms": 1000 * latencies[n // 2],
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))],
        "max_ms": 1000 * latencies[-1],
        "errors": errors,
        "requests": n,
        "driver_cpu": cpu / (loop.time() - started),
        "paths": {
            path: {
                "p50_ms": 1000 * sorted(xs)[len(xs) // 2],
                "p99_ms": 1000 * sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))],
            }
            for path, xs in by_path.items()
        },
    }


# -- the run ---------------------------------------------------------------------------------------
async def seed(database_url: str) -> tuple[str, list[str], list[str], list[uuid.UUID]]:
    """The workspace: its owner token, its group ids, its tag ids and its member ids."""
    from sqlalchemy import insert

    from bench.seeding import insert_members
    from core.audience.rule import AudienceRule
    from core.db import make_engine, make_sessionmaker
    from core.events.schemas import EventCreate
    from core.events.service import create_event
    from core.teams.models import Group, MemberGroup, MemberTag, Tag
    from core.teams.permissions import system_actor
    from core.teams.workspaces import create_workspace

    random.seed(7)
    engine = make_engine(database_url, pool_size=2)
    async with make_sessionmaker(engine)() as session:
        created = await create_workspace(session, "Load", "Europe/Berlin")
        workspace = uuid.UUID(created.id)
        groups = [Group(workspace_id=workspace, name=f"Group {i}") for i in range(10)]
        tags = [Tag(workspace_id=workspace, name=f"tag{i}") for i in range(5)]
        session.add_all([*groups, *tags])
        await session.flush()
        rows = [
            {
                "id": uuid.uuid4(),
                "workspace_id": workspace,
                "name": f"Member {i:04d}",
                "timezone": "Europe/Berlin",
                "telegram_user_id": 50_000_000 + i,
            }
            for i in range(1000)
        ]
        await insert_members(session, rows)
        await session.execute(
            insert(MemberGroup),
            [
                {"group_id": groups[i % 10].id, "member_id": r["id"], "workspace_id": workspace}
                for i, r in enumerate(rows)
            ],
        )
        await session.execute(
            insert(MemberTag),
            [
                {
                    "tag_id": tags[i % 5].id,
                    "member_id": r["id"],
                    "workspace_id": workspace,
                    "added_by": "seed",
                }
                for i, r in enumerate(rows)
                if i % 3 == 0
            ],
        )
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        actor = system_actor(workspace)
        for i in range(200):
            begins = start + timedelta(hours=7 * i)
            data = EventCreate(
                title=f"Event {i}",
                starts_at=begins,
                ends_at=begins + timedelta(hours=1),
                audience=AudienceRule(groups=[groups[i % 10].id]),
                rrule="FREQ=WEEKLY;COUNT=20" if i % 10 == 0 else None,
            )
            await create_event(session, actor, data)
        await session.commit()
    await engine.dispose()
    return (
        created.owner_token.token,
        [str(g.id) for g in groups],
        [str(t.id) for t in tags],
        [r["id"] for r in rows],
    )


async def change_members(
    database_url: str, per_second: float, members: list[uuid.UUID], stop: asyncio.Event
) -> int:
    """Mark one member after another active, ``per_second`` times a second, until ``stop``."""
    from sqlalchemy import text

    from core.db import make_engine

    engine = make_engine(database_url, pool_size=1)
    loop = asyncio.get_running_loop()
    started, done = loop.time(), 0
    try:
        while not stop.is_set():
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE members SET last_activity_at = now() WHERE id = :id"),
                    {"id": members[done % len(members)]},
                )
            done += 1
            await asyncio.sleep(max(0.0, started + done / per_second - loop.time()))
    finally:
        await engine.dispose()
    return done


def serve(
    data_dir: Path, database_url: str, redis_url: str, port: int, workers: int
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")}
    env |= {
        "VESTNIK_DATABASE_URL": database_url,
        "VESTNIK_REDIS_URL": redis_url,
        "VESTNIK_DATA_DIR": str(data_dir),
        "VESTNIK_SECRET_KEY": "load",
        "VESTNIK_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "vestnik", "api", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    log = (data_dir / f"api-{workers}.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError((data_dir / f"api-{workers}.log").read_text())


def measure(url: str, token: str, rate: float, seconds: float, mix: list[Any]) -> dict[str, Any]:
    """One rate, from a driver process of its own (its CPU is not the server's)."""
    arguments = json.dumps(
        {"url": url, "token": token, "rate": rate, "seconds": seconds, "mix": mix}
    )
    out = subprocess.run(
        [sys.executable, __file__, "--drive", arguments], capture_output=True, check=True
    )
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def _cpu_by_process(pid: int) -> dict[int, float]:
    """CPU time used so far by a process and each of its children (the API's workers, Postgres's
    backends), by pid: steadier than latency on a shared machine, and it says where the time
    goes."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, int]:
    """CPU seconds spent between two readings by the processes alive at the second (those that
    started meanwhile count in full), and how many of the first ended meanwhile: their last
    seconds are unknown, so the figure leaves them out rather than subtract what they had."""
    spent = sum(now - before.get(pid, 0.0) for pid, now in after.items())
    return spent, len(before.keys() - after.keys())


def _postmaster(postgres: Any) -> int:
    return int((postgres.pgdata / "postmaster.pid").read_text().split()[0])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _row(result: dict[str, Any]) -> str:
    gone = result.get("backends_ended", 0)
    ended = f" (not counting {gone} backends that ended meanwhile)" if gone else ""
    under = "yes" if result["p99_ms"] < GOAL_P99_MS and not result["errors"] else "no"
    paths = "; ".join(
        f"{path} p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} ms"
        for path, v in result["paths"].items()
    )
    return (
        f"  {result['rate']:>6.0f}/s asked, {result['achieved']:>6.1f}/s achieved: "
        f"p50 {result['p50_ms']:>7.1f} ms, p99 {result['p99_ms']:>7.1f} ms, "
        f"max {result['max_ms']:>7.1f} ms, errors {result['errors']}/{result['requests']}, "
        f"driver CPU {result['driver_cpu']:.0%}; p99 under {GOAL_P99_MS:g} ms: {under}\n"
        f"           CPU per request: API {result['api_cpu_ms']:.2f} ms, "
        f"Postgres {result['postgres_cpu_ms']:.2f} ms{ended}\n"
        f"           {paths}"
    )


async def main(args: argparse.Namespace) -> None:
    from bench.delivery import Bench
    from core import kinds
    from core.embedded import EmbeddedPostgres, EmbeddedRedis

    kinds.install()
    with tempfile.TemporaryDirectory(prefix="vestnik-load-") as tmp:
        data = Path(tmp)
        postgres = EmbeddedPostgres(data / "pg")
        redis = EmbeddedRedis(data / "redis")
        bench = Bench(postgres, postgres.start(), redis.start(), data)
        try:
            url = await bench.fresh_database()
            token, groups, tags, members = await seed(url)
            mix = _mix(groups, tags)
            writes = (
                f"; beside the reads, a member changed {args.writes:g} times a second"
                if args.writes
                else "; reads only (--writes N: with changes beside them)"
            )
            print(
                "1,000 members (10 groups, 5 tags), 200 events; the mix: GET /members?limit=50, "
                f"GET /events, POST /audience/preview; {args.seconds:g} s a rate{writes}",
                flush=True,
            )
            best: dict[str, float] = {}
            layouts = [("one process, as `vestnik run`", 1)]
            if args.workers > 1:
                layouts.append((f"`vestnik api --workers {args.workers}`", args.workers))
            for name, workers in layouts:
                port = _free_port()
                process = serve(data, url, bench.redis_url, port, workers)
                print(f"{name}:", flush=True)
                best[name] = 0.0
                try:
                    for rate in args.rates:
                        before = (
                            _cpu_by_process(process.pid),
                            _cpu_by_process(_postmaster(postgres)),
                        )
                        stop = asyncio.Event()
                        writer = (
                            asyncio.create_task(change_members(url, args.writes, members, stop))
                            if args.writes
                            else None
                        )
                        result = await asyncio.to_thread(
                            measure, f"http://127.0.0.1:{port}", token, rate, args.seconds, mix
                        )
                        stop.set()
                        if writer is not None:
                            await writer
                        sent = rate * (SETTLE_SECONDS + args.seconds)
                        api, _ = _cpu_spent(before[0], _cpu_by_process(process.pid))
                        db, ended = _cpu_spent(before[1], _cpu_by_process(_postmaster(postgres)))
                        result["api_cpu_ms"] = 1000 * api / sent
                        result["postgres_cpu_ms"] = 1000 * db / sent
                        result["backends_ended"] = ended
                        print(_row(result), flush=True)
                        if result["p99_ms"] < GOAL_P99_MS and not result["errors"]:
                            best[name] = max(best[name], result["achieved"])
                        if result["p99_ms"] > 1000 or result["errors"] > result["requests"] / 100:
                            print("  saturated: higher rates skipped", flush=True)
                            break
                finally:
                    process.terminate()
                    process.wait(30)
            baseline = best[layouts[0][0]]
            print(f"\nhighest rate with p99 < {GOAL_P99_MS:g} ms (goal: {GOAL_RATE}/s)")
            for name, rate in best.items():
                ratio = f"{rate / baseline:.2f}x the one process" if baseline else "n/a"
                print(f"  {name:<40} {rate:>6.0f}/s = {rate / GOAL_RATE:.2f} of the goal; {ratio}")
        finally:
            redis.stop()
            postgres.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--drive":
        given = json.loads(sys.argv[2])
        result = asyncio.run(
            drive(given["url"], given["token"], given["rate"], given["seconds"], given["mix"])
        )
        print(json.dumps(result))
        sys.exit(0)
    from bench.arguments import bench_parser

    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each rate is held")
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[35, 100, 200, 300, 500],
        help="arrival rates to hold, requests/s",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="API processes of the production layout, run after one process (1: one only)",
    )
    parser.add_argument(
        "--writes",
        type=float,
        default=0.0,
        help="member changes a second beside the reads (each renews the read cache's stamp)",
    )
    args = parser.parse_args()
    asyncio.run(main(args))
