"""Real scheduler and worker processes, killed and starved: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.emulator import BotApiEmulator
from tests.conftest import Workspace, child_env, vestnik_command
from tests.factories import member, ok

LEASE_SECONDS = 3


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    server = BotApiEmulator(rate_per_second=None)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def start(
    pg_url: str, redis_url: str, emulator: BotApiEmulator, tmp_path: Path
) -> AsyncIterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `vestnik worker` or `vestnik scheduler` as a real process; all are stopped after."""
    started: list[subprocess.Popen[bytes]] = []
    env = child_env(
        VESTNIK_DATABASE_URL=pg_url,
        VESTNIK_REDIS_URL=redis_url,
        VESTNIK_DATA_DIR=str(tmp_path),
        VESTNIK_SECRET_KEY="fault-tests",
        VESTNIK_TELEGRAM_TOKEN="123456:FAULTS",
        VESTNIK_TELEGRAM_API_URL=emulator.base_url,
        VESTNIK_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        VESTNIK_SCHEDULER_INTERVAL_SECONDS="0.2",
    )

    def launch(role: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{role}-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            vestnik_command(role), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append(process)
        return process

    yield launch  # type: ignore[misc]
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _due_now(ws: Workspace, people: int, first_chat: int = 1000) -> None:
    """``people`` members, each with an event whose reminder is due right away."""
    starts = (datetime.now(UTC) + timedelta(seconds=61)).isoformat()
    for i in range(people):
        person = await member(ws.client, f"Person {i}", telegram_user_id=first_chat + i)
        await ok(
            ws.client.post(
                "/events",
                json={
                    "title": f"Event {i}",
                    "starts_at": starts,
                    "audience": {"members": [person["id"]]},
                    "reminder_offsets": [1],
                },
            ),
            201,
        )


async def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


def _per_chat(emulator: BotApiEmulator) -> dict[int, int]:
    counts: dict[int, int] = {}
    for message in emulator.messages:
        counts[message.chat_id] = counts.get(message.chat_id, 0) + 1
    return counts


async def test_two_schedulers_and_two_workers_send_each_reminder_once(
    acme: Workspace, emulator, start
):
    await _due_now(acme, 30)
    for role in ("scheduler", "scheduler", "worker", "worker"):
        start(role)
    await _until(lambda: len(emulator.messages) >= 30)
    await asyncio.sleep(LEASE_SECONDS + 1)  # long enough for any double to show up
    assert _per_chat(emulator) == {1000 + i: 1 for i in range(30)}


async def test_jobs_lost_with_redis_come_back_after_their_lease(
    acme: Workspace, emulator, start, redis_url: str
):
    await _due_now(acme, 5, first_chat=2000)
    scheduler = start("scheduler")
    redis = Redis.from_url(redis_url)
    try:
        await _until(lambda: True, 0.1)
        # The scheduler claims and enqueues; the queue is wiped before any worker reads it.
        await asyncio.sleep(2)
        await redis.flushall()
    finally:
        await redis.aclose()
    start("worker")
    await _until(lambda: len(emulator.messages) >= 5)
    await asyncio.sleep(LEASE_SECONDS + 1)
    assert _per_chat(emulator) == {2000 + i: 1 for i in range(5)}
    assert scheduler.poll() is None


async def test_a_killed_worker_loses_no_reminder(acme: Workspace, emulator, start):
    emulator.delay = 1.0  # each send takes a second: the kill lands mid-batch
    await _due_now(acme, 6, first_chat=3000)
    start("scheduler")
    doomed = start("worker")
    await _until(lambda: len(emulator.messages) >= 1)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    emulator.delay = 0.0
    start("worker")
    await _until(lambda: len(emulator.messages) >= 5, seconds=90)
    await asyncio.sleep(LEASE_SECONDS + 2)
    counts = _per_chat(emulator)
    assert all(n == 1 for n in counts.values()), counts  # never twice
    # At most the one message that was on the wire when the worker died can be missing
    # (its delivery row says 'sending'; vestnik never sends such a row again).
    assert len(counts) >= 5
