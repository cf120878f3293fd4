"""Benchmark: one reminder to 20,000 members, half on Telegram and half on MAX, through real
`vestnik scheduler` + `vestnik worker` processes and both emulators. Prints figures; asserts
nothing about time.

Run: python bench/messengers.py [--size 20000] [--telegram-rate 30] [--max-rate 30]

Each emulator enforces its own bot-wide limit (MAX's also 2 a second per chat); vestnik is told
the same limits. Reported per messenger: deliveries a second from the due instant to its last
arrival, against its limit (the goal is at least 0.95 of it), 429s, lost (never arrived) and
doubled. The defaults are the services' own limits (about 30 a second each), so 20,000 take about
6 minutes; `--telegram-rate 1000 --max-rate 300` is the same broadcast under load (about a
minute, and on 2 shared cores bound by the CPU rather than by the limits).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from bench.arguments import bench_parser
from bench.delivery import Bench, add_events, stop_processes
from bench.seeding import insert_members
from core import kinds
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.teams.models import Group, MemberGroup
from core.teams.workspaces import create_workspace
from emulators.max import MaxApiEmulator, chat_of
from emulators.telegram import BotApiEmulator

TELEGRAM_TOKEN = "123456:BENCH"
MAX_TOKEN = "max-bench"
FIRST_TELEGRAM, FIRST_MAX = 10_000_000, 20_000_000


async def populate(database_url: str, size: int) -> tuple[uuid.UUID, uuid.UUID]:
    """One group of ``size`` members: the first half on Telegram, the second on MAX."""
    engine = make_engine(database_url, pool_size=2)
    async with make_sessionmaker(engine)() as session:
        workspace = uuid.UUID((await create_workspace(session, "Bench", "Europe/Moscow")).id)
        group = Group(workspace_id=workspace, name="everyone")
        session.add(group)
        await session.flush()
        half = size // 2
        rows = []
        for i in range(size):
            row = {
                "id": uuid.uuid4(),
                "workspace_id": workspace,
                "name": f"m{i}",
                "timezone": "UTC",
            }
            if i < half:
                row["telegram_user_id"] = FIRST_TELEGRAM + i
            else:
                row["max_user_id"] = FIRST_MAX + i
                row["max_chat_id"] = chat_of(FIRST_MAX + i)
            rows.append(row)
        for start in range(0, size, 5000):
            chunk = rows[start : start + 5000]
            ids = [r["id"] for r in chunk]
            await insert_members(session, chunk)
            await session.execute(
                insert(MemberGroup),
                [{"group_id": group.id, "member_id": m, "workspace_id": workspace} for m in ids],
            )
        await session.commit()
    await engine.dispose()
    return workspace, group.id


def start(
    bench: Bench, database_url: str, telegram: str, max_url: str, rates: tuple[float, float]
) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")}
    env |= {
        "VESTNIK_DATABASE_URL": database_url,
        "VESTNIK_REDIS_URL": bench.redis_url,
        "VESTNIK_DATA_DIR": str(bench.data_dir),
        "VESTNIK_SECRET_KEY": "bench",
        "VESTNIK_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "VESTNIK_TELEGRAM_API_URL": telegram,
        "VESTNIK_TELEGRAM_RATE_PER_SECOND": str(rates[0]),
        "VESTNIK_MAX_TOKEN": MAX_TOKEN,
        "VESTNIK_MAX_API_URL": max_url,
        "VESTNIK_MAX_RATE_PER_SECOND": str(rates[1]),
        "VESTNIK_SCHEDULER_INTERVAL_SECONDS": "0.1",
        "VESTNIK_LOG_LEVEL": "warning",
    }
    processes = []
    for role in ("scheduler", "worker"):
        log = bench.data_dir / f"{role}.log"
        command = [sys.executable, "-m", "vestnik", role]
        processes.append(
            subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        )
    deadline = time.monotonic() + 90
    for role in ("scheduler", "worker"):
        log = bench.data_dir / f"{role}.log"
        while f"vestnik {role} ready" not in log.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not start:\n{log.read_text()}")
            time.sleep(0.1)
    return processes


async def main(size: int, telegram_rate: float, max_rate: float) -> None:
    kinds.install()
    with tempfile.TemporaryDirectory(prefix="vestnik-bench-") as tmp:
        data = Path(tmp)
        postgres = EmbeddedPostgres(data / "pg")
        redis = EmbeddedRedis(data / "redis")
        bench = Bench(postgres, postgres.start(), redis.start(), data)
        try:
            url = await bench.fresh_database()
            print(
                f"{size:,} members, half on Telegram (limit {telegram_rate:g}/s), half on MAX "
                f"(limit {max_rate:g}/s):",
                flush=True,
            )
            workspace, group = await populate(url, size)
            telegram = BotApiEmulator(rate_per_second=telegram_rate)
            maxer = MaxApiEmulator(MAX_TOKEN, rate_per_second=max_rate)
            await telegram.start()
            await maxer.start()
            half = size // 2
            telegram.introduce(*range(FIRST_TELEGRAM, FIRST_TELEGRAM + half))
            maxer.started.update(range(FIRST_MAX + half, FIRST_MAX + size))
            processes = start(
                bench, url, telegram.base_url, maxer.base_url, (telegram_rate, max_rate)
            )
            try:
                lead = 3.0
                due = datetime.now(UTC) + timedelta(seconds=lead)
                due_mono = time.monotonic() + lead
                await add_events(url, workspace, [group], [due])
                quiet_since, last = time.monotonic(), 0
                while True:
                    await asyncio.sleep(0.5)
                    count = len(telegram.messages) + len(maxer.messages)
                    if count != last:
                        last, quiet_since = count, time.monotonic()
                    if count >= size and time.monotonic() - quiet_since > 3:
                        break
                    if time.monotonic() - quiet_since > 20 and time.monotonic() > due_mono:
                        print("   nothing arrived for 20 s: stopping", flush=True)
                        break
            finally:
                stop_processes(processes)
                await telegram.stop()
                await maxer.stop()
            for name, sent, chats, limit, rejected in (
                (
                    "Telegram",
                    [m.sent_at for m in telegram.messages],
                    [m.chat_id for m in telegram.messages],
                    telegram_rate,
                    telegram.rejected_429,
                ),
                (
                    "MAX",
                    [m.sent_at for m in maxer.messages],
                    [m.user_id for m in maxer.messages],
                    max_rate,
                    maxer.rejected_429,
                ),
            ):
                delivered = len(set(chats))
                seconds = (max(sent) - due_mono) if sent else float("nan")
                rate = delivered / seconds if sent else 0.0
                span = max(sent) - min(sent) if len(sent) > 1 else float("nan")
                steady = (delivered - 1) / span if len(sent) > 1 else 0.0
                print(
                    f"   {name}: {delivered:,}/{half:,} arrived in {seconds:.1f} s from due: "
                    f"{rate:,.0f}/s = {rate / limit:.2f} of its limit ({steady:,.0f}/s = "
                    f"{steady / limit:.2f} first to last); 429s {rejected}; "
                    f"lost {half - delivered}; doubled {len(chats) - delivered}",
                    flush=True,
                )
        finally:
            redis.stop()
            postgres.stop()


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--size", type=int, default=20_000, help="members, half on Telegram, half on MAX"
    )
    parser.add_argument(
        "--telegram-rate", type=float, default=30.0, help="the Telegram bot's limit, messages/s"
    )
    parser.add_argument(
        "--max-rate", type=float, default=30.0, help="the MAX bot's limit, messages/s"
    )
    args = parser.parse_args()
    asyncio.run(main(args.size, args.telegram_rate, args.max_rate))
