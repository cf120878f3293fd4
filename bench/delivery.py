"""Benchmark: real `vestnik scheduler` + `vestnik worker` processes against the Bot API emulator,
with the aiogram community's broadcast loop as the baseline in the same run.

Run: python bench/delivery.py            (the full run: about 10 minutes on 2 cores)
     python bench/delivery.py --quick    (smaller audiences: about 4 minutes)

Every phase runs in a fresh database, a flushed Redis and a fresh emulator, so nothing left over
from one phase (a claimed job, a late batch) shows up in the next. Times are taken where Telegram
would take them: from the instant a reminder is due to its arrival at the emulator.

- fan-out: one reminder to every member of one group, at an emulator limit of 30/s, 1,000/s and
  none; the first message's delay after the due instant, deliveries/s from the due instant to the
  last arrival (and between first and last), 429s per delivered message, lost (never arrived
  after a quiet period), doubled; the unlimited one with 1, 2 and 4 worker processes;
- storm: the emulator allows a third of what vestnik is told, and answers 429 with waits of 1-5 s;
- lateness: 10,000 reminders due within one minute (200 events of 50); p50/p99/max of arrival -
  due over every reminder that was due (one never sent counts as infinitely late), p99 only from
  1,000 samples or more;
- baseline: `for chat in chats: await bot.send_message(...); await asyncio.sleep(.05)`, obeying
  RetryAfter (aiogram's broadcast example), on a sample, at each limit.

The table at the end gives each figure against its goal. CPU is reported for the worker processes
and for this process (the emulator, mostly), as a share of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiogram.exceptions import TelegramRetryAfter
from redis.asyncio import Redis
from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.arguments import bench_parser
from bench.seeding import insert_members
from core import kinds
from core.audience.rule import AudienceRule
from core.db import async_url, make_engine, make_sessionmaker
from core.embedded import EmbeddedPostgres, EmbeddedRedis
from core.events.schemas import EventCreate
from core.events.service import create_event
from core.migrate import upgrade
from core.teams.models import Group, MemberGroup
from core.teams.permissions import system_actor
from core.teams.workspaces import create_workspace
from emulators.telegram import BotApiEmulator
from worker.channels import make_bot

TOKEN = "123456:BENCH"
FIRST_CHAT = 10_000_000
UNLIMITED = 1_000_000.0  # what vestnik is told when the emulator has no limit
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    due: int  # reminders that were due
    lateness: list[float]  # arrival - due per reminder, inf if it never arrived
    messages: int
    span_from_first: float
    rejected_429: int
    sent_during_wait: int
    seconds: float  # from the first due instant to the last arrival
    worker_cpu: float
    bench_cpu: float

    @property
    def delivered(self) -> int:
        return sum(1 for x in self.lateness if math.isfinite(x))

    @property
    def lost(self) -> int:
        return self.due - self.delivered

    @property
    def doubled(self) -> int:
        return self.messages - self.delivered

    @property
    def first(self) -> float:
        return min(self.lateness, default=math.inf)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else math.nan

    @property
    def steady_rate(self) -> float:
        return (self.delivered - 1) / self.span_from_first if self.span_from_first else math.nan

    @property
    def per_message_429(self) -> float:
        return self.rejected_429 / max(1, self.delivered)

    def quantile(self, q: float) -> float | None:
        """The q-quantile over every due reminder; None from too few samples to mean it."""
        if len(self.lateness) < 1000 and q >= 0.99:
            return None
        ordered = sorted(self.lateness)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Bench:
    postgres: EmbeddedPostgres
    admin_url: str
    redis_url: str
    data_dir: Path
    phases: list[Phase] = field(default_factory=list)
    counter: int = 0

    async def fresh_database(self) -> str:
        """A new, migrated database for one phase; its URL."""
        self.counter += 1
        name = f"bench_{self.counter}"
        admin = create_async_engine(async_url(self.admin_url), isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {name}"))
        await admin.dispose()
        url = make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url, pool_size=2)
        await upgrade(engine)
        await engine.dispose()
        redis = Redis.from_url(self.redis_url)
        await redis.flushall()
        await redis.aclose()
        return url


async def populate(database_url: str, sizes: list[int]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A workspace with one group per size, members with Telegram chats (ids never repeat)."""
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    groups = []
    async with sessions() as session:
        workspace = uuid.UUID((await create_workspace(session, "Bench", "Europe/Moscow")).id)
        next_chat = FIRST_CHAT
        for number, size in enumerate(sizes):
            group = Group(workspace_id=workspace, name=f"group {number}")
            session.add(group)
            await session.flush()
            rows = [
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace,
                    "name": f"member {next_chat + i}",
                    "timezone": "Europe/Moscow",
                    "telegram_user_id": next_chat + i,
                }
                for i in range(size)
            ]
            next_chat += size
            for start in range(0, size, 5000):
                chunk = rows[start : start + 5000]
                await insert_members(session, chunk)
                links = [
                    {"group_id": group.id, "member_id": r["id"], "workspace_id": workspace}
                    for r in chunk
                ]
                await session.execute(insert(MemberGroup), links)
            groups.append(group.id)
        await session.commit()
    await engine.dispose()
    return workspace, groups


def chats_of(sizes: list[int]) -> list[list[int]]:
    out, first = [], FIRST_CHAT
    for size in sizes:
        out.append(list(range(first, first + size)))
        first += size
    return out


async def add_events(
    database_url: str, workspace: uuid.UUID, groups: list[uuid.UUID], dues: list[datetime]
) -> None:
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        for i, (group, due) in enumerate(zip(groups, dues, strict=True)):
            starts = due + timedelta(minutes=60)
            data = EventCreate(
                title=f"Event {i}",
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
                audience=AudienceRule(groups=[group]),
                reminder_offsets=[60],
            )
            await create_event(session, system_actor(workspace), data)
        await session.commit()
    await engine.dispose()


def start_processes(
    bench: Bench, database_url: str, emulator: BotApiEmulator, rate: float, workers: int
) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTNIK_")}
    env |= {
        "VESTNIK_DATABASE_URL": database_url,
        "VESTNIK_REDIS_URL": bench.redis_url,
        "VESTNIK_DATA_DIR": str(bench.data_dir),
        "VESTNIK_SECRET_KEY": "bench",
        "VESTNIK_TELEGRAM_TOKEN": TOKEN,
        "VESTNIK_TELEGRAM_API_URL": emulator.base_url,
        "VESTNIK_TELEGRAM_RATE_PER_SECOND": str(rate),
        "VESTNIK_SCHEDULER_INTERVAL_SECONDS": "0.1",
        "VESTNIK_LOG_LEVEL": "warning",
    }
    processes = []
    for role in ["scheduler"] + ["worker"] * workers:
        log = bench.data_dir / f"{role}-{len(processes)}.log"
        out = log.open("wb")
        command = [sys.executable, "-m", "vestnik", role]
        processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    for number, process in enumerate(processes):
        role = "scheduler" if number == 0 else "worker"
        log = bench.data_dir / f"{role}-{number}.log"
        while f"vestnik {role} ready" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not start:\n{log.read_text()}")
            time.sleep(0.1)
    return processes


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_phase(
    bench: Bench,
    name: str,
    sizes: list[int],
    spread: float,
    emulator: BotApiEmulator,
    told_rate: float,
    workers: int = 1,
) -> Phase:
    """One reminder per group in ``sizes``, due evenly over ``spread`` seconds from a few
    seconds after every process is ready; until every chat got it or nothing arrived for a
    quiet period."""
    print(f"  {name}: preparing {sum(sizes):,} members …", flush=True)
    database_url = await bench.fresh_database()
    workspace, groups = await populate(database_url, sizes)
    chats = chats_of(sizes)
    await emulator.start()
    emulator.introduce(*(c for group in chats for c in group))
    processes = start_processes(bench, database_url, emulator, told_rate, workers)
    try:
        # Due shortly, on the clock the processes read; the same instants on ours.
        lead = 2.0 + sum(sizes) / 20_000
        first_due = datetime.now(UTC) + timedelta(seconds=lead)
        due_mono = time.monotonic() + lead
        step = spread / len(sizes) if len(sizes) > 1 else 0.0
        dues = [first_due + timedelta(seconds=i * step) for i in range(len(sizes))]
        await add_events(database_url, workspace, groups, dues)
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in processes}
        own_before = own_cpu()
        expected = sum(sizes)
        quiet = 15.0
        deadline = due_mono + spread + expected / max(1.0, min(told_rate, 3000)) * 4 + 120
        last_count, last_change, last_report = 0, time.monotonic(), time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            count = len(emulator.messages)
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if count >= expected and now - last_change > 3:
                break  # everything arrived, and no double followed for three seconds
            if now > due_mono + spread and now - last_change > quiet:
                print(f"    nothing arrived for {quiet:.0f} s: stopping", flush=True)
                break
            if now > deadline:
                print("    deadline reached: stopping", flush=True)
                break
            if now - last_report > 10:
                print(f"    {count:,}/{expected:,} …", flush=True)
                last_report = now
        worker_cpu = sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p in processes[1:])
        bench_cpu = own_cpu() - own_before
    finally:
        stop_processes(processes)
        await emulator.stop()
    arrival: dict[int, float] = {}
    for message in emulator.messages:
        arrival.setdefault(message.chat_id, message.sent_at)
    lateness = []
    for group, due in zip(chats, dues, strict=True):
        due_at = due_mono + (due - first_due).total_seconds()
        lateness += [arrival[c] - due_at if c in arrival else math.inf for c in group]
    times = sorted(m.sent_at for m in emulator.messages)
    phase = Phase(
        name=name,
        due=expected,
        lateness=lateness,
        messages=len(emulator.messages),
        span_from_first=(times[-1] - times[0]) if len(times) > 1 else 0.0,
        rejected_429=emulator.rejected_429,
        sent_during_wait=emulator.sent_during_wait,
        seconds=(times[-1] - due_mono) if times else 0.0,
        worker_cpu=worker_cpu,
        bench_cpu=bench_cpu,
    )
    bench.phases.append(phase)
    seconds = max(phase.seconds, 0.001)
    print(
        f"    {phase.delivered:,}/{expected:,} arrived; first after {phase.first:.2f} s; "
        f"{phase.rate:,.0f}/s from due ({phase.steady_rate:,.0f}/s first to last); "
        f"429s {phase.rejected_429} ({phase.per_message_429:.3f}/message, "
        f"{phase.sent_during_wait} inside a wait); lost {phase.lost}; doubled {phase.doubled}; "
        f"CPU: workers {worker_cpu / seconds:.0%} of a core, emulator {bench_cpu / seconds:.0%}",
        flush=True,
    )
    return phase


async def baseline(chats: list[int], rate: float | None) -> float:
    """aiogram's broadcast example against a fresh emulator; messages per second."""
    emulator = BotApiEmulator(rate_per_second=rate)
    emulator.introduce(*chats)
    await emulator.start()
    bot = make_bot(TOKEN, emulator.base_url)
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
        await emulator.stop()
    per_second = len(emulator.messages) / (time.monotonic() - started)
    label = f"{rate:g}/s" if rate else "unlimited"
    print(f"  baseline at {label}: {per_second:.1f}/s", flush=True)
    return per_second


def row(figure: str, value: float | None, goal: str, ratio: float | None) -> str:
    shown = "n/a" if value is None else (f"{value:,.2f}" if value < 100 else f"{value:,.0f}")
    ratio_text = "" if ratio is None or math.isnan(ratio) else f"{ratio:.2f}"
    return f"  {figure:<52} {shown:>10}  {goal:<16} {ratio_text:>6}"


async def main(args: argparse.Namespace) -> None:
    kinds.install()
    phases = set(args.phases)
    slow = fast = storm = late = None
    unlimited: list[Phase] = []
    naive: dict[float | None, float] = {}
    with tempfile.TemporaryDirectory(prefix="vestnik-bench-") as tmp:
        data_dir = Path(tmp)
        postgres = EmbeddedPostgres(data_dir)
        redis = EmbeddedRedis(data_dir / "redis")
        bench = Bench(postgres, postgres.start(), redis.start(), data_dir)
        try:
            if "30" in phases:
                print(f"fan-out at 30/s: {args.slow_members:,} members", flush=True)
                emulator = BotApiEmulator(rate_per_second=30)
                slow = await run_phase(bench, "30/s", [args.slow_members], 0, emulator, 30)
            if "1000" in phases:
                print(f"fan-out at 1,000/s: {args.members:,} members", flush=True)
                emulator = BotApiEmulator(rate_per_second=1000)
                fast = await run_phase(bench, "1,000/s", [args.members], 0, emulator, 1000)
            for workers in args.workers if "unlimited" in phases else []:
                print(f"fan-out, no limit, {workers} worker(s): {args.members:,}", flush=True)
                emulator = BotApiEmulator(rate_per_second=None)
                name = f"no limit, {workers} worker(s)"
                unlimited.append(
                    await run_phase(bench, name, [args.members], 0, emulator, UNLIMITED, workers)
                )
            if "storm" in phases:
                print("storm: the emulator allows 10/s, vestnik is told 30/s", flush=True)
                emulator = BotApiEmulator(rate_per_second=10, retry_after=(1, 5))
                storm = await run_phase(bench, "storm", [args.storm_members], 0, emulator, 30)
            if "lateness" in phases:
                events = args.reminders // args.per_event
                print(f"lateness: {args.reminders:,} reminders in {events} events over 60 s")
                emulator = BotApiEmulator(rate_per_second=1000)
                sizes = [args.per_event] * events
                late = await run_phase(bench, "lateness", sizes, 60, emulator, 1000)
            if "baseline" in phases:
                print("baseline: aiogram's broadcast loop", flush=True)
                sample = list(range(FIRST_CHAT, FIRST_CHAT + args.baseline_members))
                naive = {rate: await baseline(sample, rate) for rate in (30.0, 1000.0, None)}
        finally:
            redis.stop()
            postgres.stop()
    print("\nvestnik delivery (ratio: figure / goal)")
    print(f"  {'figure':<52} {'value':>10}  {'goal':<16} {'ratio':>6}")
    for line in _table(slow, fast, unlimited, storm, late, naive, bench.phases):
        print(line)


def _table(
    slow: Phase | None,
    fast: Phase | None,
    unlimited: list[Phase],
    storm: Phase | None,
    late: Phase | None,
    naive: dict[float | None, float],
    phases: list[Phase],
) -> list[str]:
    lines = []
    if slow:
        lines.append(
            row("30/s: messages/s from the due instant", slow.rate, "≥ 27", slow.rate / 30)
        )
    if 30.0 in naive:
        lines.append(row("  baseline loop at 30/s", naive[30.0], "", naive[30.0] / 30))
    if fast:
        lines.append(row("1,000/s: messages/s from due", fast.rate, "≥ 900", fast.rate / 1000))
    if 1000.0 in naive:
        lines.append(row("  baseline loop at 1,000/s", naive[1000.0], "", naive[1000.0] / 1000))
    for phase in unlimited:
        lines.append(
            row(f"{phase.name}: messages/s from due", phase.rate, "≥ 3,000", phase.rate / 3000)
        )
    if None in naive:
        lines.append(row("  baseline loop, no limit", naive[None], "", naive[None] / 3000))
    for phase in [p for p in [fast, *unlimited] if p]:
        lines.append(
            row(f"{phase.name}: first message after due (s)", phase.first, "≤ 1", phase.first)
        )
    if late:
        p99, worst = late.quantile(0.99), max(late.lateness)
        lines.append(row("lateness p50 (s)", late.quantile(0.5), "", None))
        lines.append(row("lateness p99 (s)", p99, "< 1", p99))
        lines.append(row("lateness max (s)", worst, "< 2", worst / 2))
    if storm:
        lines.append(
            row(
                "storm: 429s per delivered message",
                storm.per_message_429,
                "≤ 0.1",
                storm.per_message_429 / 0.1,
            )
        )
        lines.append(
            row("storm: sends inside an announced wait", storm.sent_during_wait, "0", None)
        )
    if fast:
        lines.append(row("429s per message at 1,000/s (steady)", fast.per_message_429, "0", None))
    lines.append(row("lost, all phases", sum(p.lost for p in phases), "0", None))
    lines.append(row("doubled, all phases", sum(p.doubled for p in phases), "0", None))
    return lines


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument("--members", type=int, default=20_000, help="fan-out audience")
    parser.add_argument("--slow-members", type=int, default=1500, help="fan-out at 30/s")
    parser.add_argument("--storm-members", type=int, default=300, help="429 storm: audience")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="worker processes to compare"
    )
    parser.add_argument("--reminders", type=int, default=10_000, help="lateness: total")
    parser.add_argument("--per-event", type=int, default=50, help="lateness: members per event")
    parser.add_argument(
        "--baseline-members", type=int, default=300, help="aiogram broadcast loop: audience"
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        default=["30", "1000", "unlimited", "storm", "lateness", "baseline"],
        help="which phases to run (all by default)",
    )
    parser.add_argument("--quick", action="store_true", help="5,000-member fan-outs, 1 worker")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.members, parsed.slow_members, parsed.storm_members = 5000, 600, 150
        parsed.workers = [1]
        parsed.baseline_members = 100
    asyncio.run(main(parsed))
