"""Limits shared through Redis keep several workers under Telegram's limits: no 429 in steady state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.emulator import BotApiEmulator
from core.notify.channels import OutcomeKind
from core.notify.messages import OutboundMessage
from core.notify.ratelimit import Limits, RateLimiter
from worker.channels import TelegramChannel, make_bot

TOKEN = "424242:TEST"


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    server = BotApiEmulator(rate_per_second=30, per_chat_per_second=1)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def _worker(emulator: BotApiEmulator, limiter: RateLimiter | None, chats: range) -> list[str]:
    bot = make_bot(TOKEN, emulator.base_url)
    channel = TelegramChannel(bot, limiter)
    try:
        outcomes = await asyncio.gather(
            *(channel.send(str(chat), OutboundMessage(text="Broadcast"), []) for chat in chats)
        )
    finally:
        await bot.session.close()
    return [o.kind.value for o in outcomes]


async def test_without_shared_limits_a_burst_trips_429s(emulator: BotApiEmulator):
    outcomes = await _worker(emulator, None, range(1, 81))
    assert OutcomeKind.retry.value in outcomes
    assert emulator.rejected_429 > 0


async def test_two_workers_sharing_limits_in_redis_never_trip_a_429(
    emulator: BotApiEmulator, redis: Redis, redis_url: str
):
    second = Redis.from_url(redis_url)
    try:
        results = await asyncio.gather(
            _worker(emulator, RateLimiter(redis, Limits()), range(1, 41)),
            _worker(emulator, RateLimiter(second, Limits()), range(41, 81)),
        )
    finally:
        await second.aclose()
    assert [o for batch in results for o in batch] == ["sent"] * 80
    assert emulator.rejected_429 == 0
    assert len(emulator.messages) == 80


async def test_one_chat_gets_at_most_one_message_a_second(emulator: BotApiEmulator, redis: Redis):
    outcomes = await _worker(emulator, RateLimiter(redis, Limits()), range(7, 8))
    outcomes += await _worker(emulator, RateLimiter(redis, Limits()), range(7, 8))
    outcomes += await _worker(emulator, RateLimiter(redis, Limits()), range(7, 8))
    assert outcomes == ["sent"] * 3
    assert emulator.rejected_429 == 0
