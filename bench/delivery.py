"""Benchmark: fan-out and lateness of real `vestnik scheduler` + `vestnik worker` processes,
against the Bot API emulator, with the aiogram community's broadcast loop as the baseline.

Run: python bench/delivery.py            (the full run: about 15 minutes, mostly the 30/s fan-out)
     python bench/delivery.py --quick    (2,000 members, 2,000 reminders: about 3 minutes)

Fan-out: one event reminder to every member of one group; for each emulator limit (30/s, 1,000/s,
unlimited) it prints deliveries/s, the ratio to the limit, 429s seen, duplicates and losses.
Lateness: reminders spread evenly over one minute for many events; p50/p99/max of
sent_at - due_at from the delivery rows. Baseline: `for chat in chats: await bot.send_message(...);
await asyncio.sleep(.05)` (aiogram's broadcast example), on a sample of the same members.
Uses a throwaway embedded Postgres and Redis; nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiogram.exceptions import TelegramRetryAfter
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.emulator import BotApiEmulator
from core.db import make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.events.schemas import EventCreate
from core.events.service import create_event
from core.migrate import upgrade
from core.notify.audience import AudienceRule
from core.notify.models import Delivery, Job
from core.teams.models import Group, Member, MemberGroup
from core.teams.permissions import system_actor
from core.teams.workspaces import create_workspace
from worker.channels import make_bot

TOKEN = "123456:BENCH"
FIRST_CHAT = 10_000_000
UNLIMITED = 1_000_000.0  # what vestnik is told when the emulator has no limit


@dataclass
class Stack:
    sessions: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    database_url: str
    redis_url: str
    data_dir: Path
    emulator: BotApiEmulator
    workspace: uuid.UUID


async def populate(stack: Stack, groups: dict[str, int]) -> dict[str, uuid.UUID]:
    """Members with Telegram chats, in groups of the given sizes (chat ids never repeat)."""
    out: dict[str, uuid.UUID] = {}
    next_chat = FIRST_CHAT
    async with stack.sessions() as session:
        for name, size in groups.items():
            group = Group(workspace_id=stack.workspace, name=name)
            session.add(group)
            await session.flush()
            rows = [
                {
                    "id": uuid.uuid4(),
                    "workspace_id": stack.workspace,
                    "name": f"{name} member {i:05}",
                    "timezone": "Europe/Moscow",
                    "telegram_user_id": next_chat + i,
                }
                for i in range(size)
            ]
            next_chat += size
            for start in range(0, size, 5000):
                chunk = rows[start : start + 5000]
                await session.execute(insert(Member), chunk)
                await session.execute(
                    insert(MemberGroup),
                    [
                        {
                            "group_id": group.id,
                            "member_id": r["id"],
                            "workspace_id": stack.workspace,
                        }
                        for r in chunk
                    ],
                )
            out[name] = group.id
        await session.commit()
    return out


def start_processes(stack: Stack, rate: float) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")}
    env |= {
        "VESTNIK_DATABASE_URL": stack.database_url,
        "VESTNIK_REDIS_URL": stack.redis_url,
        "VESTNIK_DATA_DIR": str(stack.data_dir),
        "VESTNIK_SECRET_KEY": "bench",
        "VESTNIK_TELEGRAM_TOKEN": TOKEN,
        "VESTNIK_TELEGRAM_API_URL": stack.emulator.base_url,
        "VESTNIK_TELEGRAM_RATE_PER_SECOND": str(rate),
        "VESTNIK_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "VESTNIK_LOG_LEVEL": "warning",
    }
    log = (stack.data_dir / "processes.log").open("ab")
    return [
        subprocess.Popen(
            [sys.executable, "-m", "vestnik", role], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for role in ("scheduler", "worker")
    ]


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def add_event(
    stack: Stack, title: str, group: uuid.UUID, due: datetime, reminder_minutes: int = 1
) -> None:
    starts = due + timedelta(minutes=reminder_minutes)
    data = EventCreate(
        title=title,
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        audience=AudienceRule(groups=[group]),
        reminder_offsets=[reminder_minutes],
    )
    async with stack.sessions() as session:
        await create_event(session, system_actor(stack.workspace), data)
        await session.commit()


async def wait_for(emulator: BotApiEmulator, expected: int, label: str, limit: float) -> None:
    """Until ``expected`` distinct chats got a message (or ``limit`` seconds), with progress."""
    started = time.monotonic()
    last_report = started
    while len({m.chat_id for m in emulator.messages}) < expected:
        now = time.monotonic()
        if now - started > limit:
            print(f"    {label}: gave up waiting after {limit:.0f} s", flush=True)
            return
        if now - last_report >= 10:
            print(f"    {label}: {len(emulator.messages)}/{expected} …", flush=True)
            last_report = now
        await asyncio.sleep(0.25)
    await asyncio.sleep(3)  # long enough for a double to show up


def reset(emulator: BotApiEmulator, rate: float | None) -> None:
    emulator.messages.clear()
    emulator.rejected_429 = 0
    emulator.rate_per_second = rate
    emulator._reset_buckets()


async def fan_out(stack: Stack, group: uuid.UUID, members: int, rate: float | None) -> None:
    label = f"{rate:g}/s" if rate else "unlimited"
    reset(stack.emulator, rate)
    processes = start_processes(stack, rate or UNLIMITED)
    try:
        due = datetime.now(UTC) + timedelta(seconds=3)
        await add_event(stack, f"Fan-out at {label}", group, due)
        expected_seconds = members / (rate or 2000) * 1.5 + 60
        await wait_for(stack.emulator, members, f"fan-out {label}", expected_seconds)
    finally:
        stop_processes(processes)
    messages = stack.emulator.messages
    chats = {m.chat_id for m in messages}
    span = max(m.sent_at for m in messages) - min(m.sent_at for m in messages) if messages else 0
    per_second = len(messages) / span if span else float("nan")
    ratio = f"{per_second / rate:.2f} of the limit" if rate else "no limit"
    print(
        f"  vestnik  {label:>9}: {len(messages):>6} messages in {span:7.1f} s = "
        f"{per_second:7.1f}/s ({ratio}); 429s {stack.emulator.rejected_429}; "
        f"duplicates {len(messages) - len(chats)}; lost {members - len(chats)}",
        flush=True,
    )


async def baseline(stack: Stack, chats: list[int], rate: float | None) -> None:
    """The broadcast loop from aiogram's examples: send, sleep 50 ms, obey RetryAfter."""
    label = f"{rate:g}/s" if rate else "unlimited"
    reset(stack.emulator, rate)
    bot = make_bot(TOKEN, stack.emulator.base_url)
    started = time.monotonic()
    try:
        for chat in chats:
            while True:
                try:
                    await bot.send_message(chat_id=chat, text="Reminder")
                    break
                except TelegramRetryAfter as exc:
                    await asyncio.sleep(exc.retry_after)
            await asyncio.sleep(0.05)
    finally:
        await bot.session.close()
    span = time.monotonic() - started
    sent = len(stack.emulator.messages)
    print(
        f"  baseline {label:>9}: {sent:>6} messages in {span:7.1f} s = {sent / span:7.1f}/s; "
        f"429s {stack.emulator.rejected_429}; 20,000 would take {20_000 / (sent / span) / 60:.0f} min",
        flush=True,
    )


async def lateness(stack: Stack, groups: list[uuid.UUID], per_group: int, rate: float) -> None:
    """Events whose reminders fall evenly over one minute; lateness from the delivery rows.

    The events are made an hour ahead (making 200 events takes a while), then their reminder
    jobs are shifted to start 15 s from now, so every one of them is due within the minute.
    """
    reset(stack.emulator, rate)
    base = datetime.now(UTC) + timedelta(hours=1)
    step = timedelta(seconds=60) / len(groups)
    for i, group in enumerate(groups):
        await add_event(stack, f"Lateness {i}", group, base + i * step)
    first_due = datetime.now(UTC) + timedelta(seconds=15)
    async with stack.sessions() as session:
        await session.execute(
            update(Job)
            .where(Job.kind == "reminder", Job.due_at >= base)
            .values(
                due_at=Job.due_at + (first_due - base),
                occurrence_start=Job.occurrence_start + (first_due - base),
            )
        )
        await session.commit()
    total = len(groups) * per_group
    processes = start_processes(stack, rate)
    try:
        await wait_for(stack.emulator, total, f"lateness at {rate:g}/s", 15 + 60 + total / rate * 2)
    finally:
        stop_processes(processes)
    async with stack.sessions() as session:
        rows = await session.execute(
            select(func.extract("epoch", Delivery.sent_at - Job.due_at))
            .join(Job, Job.id == Delivery.job_id)
            .where(Job.due_at >= first_due, Delivery.sent_at.is_not(None))
        )
        late = sorted(float(x) for (x,) in rows)
    if len(late) < 2:
        print("  lateness: no deliveries recorded")
        return
    p99 = statistics.quantiles(late, n=100)[98]
    print(
        f"  lateness ({len(late)} reminders over 60 s, {len(groups)} events, {rate:g}/s): "
        f"p50 {statistics.median(late):.2f} s, p99 {p99:.2f} s, max {late[-1]:.2f} s; "
        f"429s {stack.emulator.rejected_429}",
        flush=True,
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="vestnik-bench-") as tmp:
        data_dir = Path(tmp)
        postgres = EmbeddedPostgres(data_dir)
        redis = EmbeddedRedis(data_dir / "redis")
        database_url = postgres.start()
        redis_url = redis.start()
        engine = make_engine(database_url)
        emulator = BotApiEmulator(rate_per_second=None)
        await emulator.start()
        try:
            await upgrade(engine)
            sessions = make_sessionmaker(engine)
            async with sessions() as session:
                created = await create_workspace(session, "Bench", "Europe/Moscow")
                await session.commit()
            stack = Stack(
                sessions,
                engine,
                database_url,
                redis_url,
                data_dir,
                emulator,
                uuid.UUID(created.id),
            )
            batches = args.reminders // args.per_event
            print(
                f"populating {args.members} members for fan-out and "
                f"{batches} x {args.per_event} for lateness …",
                flush=True,
            )
            sizes = {"fan-out": args.members} | {
                f"late {i}": args.per_event for i in range(batches)
            }
            ids = await populate(stack, sizes)
            if args.members:
                print(f"fan-out: one reminder to {args.members} members")
            for rate in args.rates if args.members else []:
                await fan_out(stack, ids["fan-out"], args.members, rate or None)
            sample = list(range(FIRST_CHAT, FIRST_CHAT + args.baseline_members))
            for rate in args.rates if args.baseline_members else []:
                await baseline(stack, sample, rate or None)
            if batches:
                print(f"lateness: {args.reminders} reminders due within one minute")
                late_groups = [ids[f"late {i}"] for i in range(batches)]
                await lateness(stack, late_groups, args.per_event, args.lateness_rate)
        finally:
            await emulator.stop()
            await engine.dispose()
            redis.stop()
            postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000, help="fan-out audience")
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[30, 1000, 0],
        help="emulator limits per second for the fan-out (0: unlimited)",
    )
    parser.add_argument("--reminders", type=int, default=10_000, help="lateness: total")
    parser.add_argument("--per-event", type=int, default=50, help="lateness: members per event")
    parser.add_argument("--lateness-rate", type=float, default=1000.0)
    parser.add_argument("--baseline-members", type=int, default=600)
    parser.add_argument("--quick", action="store_true", help="2,000 members and reminders")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.members = 2000
        parsed.reminders = 2000
        parsed.baseline_members = 200
    asyncio.run(main(parsed))
