"""Limits shared through Redis keep several workers under Telegram's limits, and a 429 pauses
every sender of the bot: no 429 in steady state, almost none in a storm."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.delivery.channels import OutboundMessage, OutcomeKind
from core.delivery.ratelimit import SLOWDOWN, Lane, Limits, RateLimiter, planned_rate
from emulators.telegram import BotApiEmulator
from worker.channels import TelegramChannel, make_bot

TOKEN = "424242:TEST"
LANE = Lane("telegram:424242", Limits())


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    server = BotApiEmulator(rate_per_second=30, per_chat_per_second=1)
    server.introduce(*range(1, 200))
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
    """What a worker does with a batch: slots for all of it, then each send at its slot."""
    bot = make_bot(TOKEN, emulator.base_url)
    channel = TelegramChannel(bot)
    delays, busy = [0.0] * len(chats), [False] * len(chats)
    if limiter is not None:
        reservation = await limiter.reserve(channel.lane, [str(c) for c in chats])
        delays, busy = reservation.delays, reservation.busy

    async def send(chat: int, delay: float, wait_for_chat: bool) -> str:
        await asyncio.sleep(delay)
        if wait_for_chat:  # no slot was taken: the chat was busy; take one now
            assert limiter is not None
            await limiter.acquire(channel.lane, str(chat))
        outcome = await channel.send(str(chat), OutboundMessage(text="Broadcast"), [])
        return outcome.kind.value

    try:
        sends = (send(c, d, b) for c, d, b in zip(chats, delays, busy, strict=True))
        return list(await asyncio.gather(*sends))
    finally:
        await bot.session.close()


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
            _worker(emulator, RateLimiter(redis), range(1, 41)),
            _worker(emulator, RateLimiter(second), range(41, 81)),
        )
    finally:
        await second.aclose()
    assert [o for batch in results for o in batch] == ["sent"] * 80
    assert emulator.rejected_429 == 0
    assert len(emulator.messages) == 80


async def test_one_chat_gets_at_most_one_message_a_second(emulator: BotApiEmulator, redis: Redis):
    outcomes = await _worker(emulator, RateLimiter(redis), range(7, 8))
    outcomes += await _worker(emulator, RateLimiter(redis), range(7, 8))
    outcomes += await _worker(emulator, RateLimiter(redis), range(7, 8))
    assert outcomes == ["sent"] * 3
    assert emulator.rejected_429 == 0


def test_the_bot_is_planned_under_its_limit_with_room_for_late_arrivals():
    assert planned_rate(1000) == 970  # 3% of the limit
    assert planned_rate(30) == 28  # at least two messages a second
    assert planned_rate(20) == 18
    assert planned_rate(3) == 1.5  # never under half
    assert planned_rate(1.5) == 0.75  # never under half


async def test_a_batch_takes_all_its_slots_in_one_reservation(redis: Redis):
    limiter = RateLimiter(redis)
    lane = Lane("telegram:1", Limits(per_bot_per_second=10))
    first = await limiter.reserve(lane, [str(c) for c in range(1, 11)])
    gaps = [b - a for a, b in itertools.pairwise(first.delays)]
    assert all(gap == pytest.approx(1 / planned_rate(10), abs=0.001) for gap in gaps)
    # The next batch, from any worker, queues behind the first one's slots.
    second = await limiter.reserve(lane, ["11"])
    assert second.delays[0] >= first.delays[-1] + 0.05


async def test_a_lead_keeps_an_idle_bots_first_slot_that_far_ahead_and_no_further(redis: Redis):
    """The dispatcher commits a batch as sending before its first slot: on an idle bot the
    first slot would be now, and the commit would make the first messages late (bunched)."""
    limiter = RateLimiter(redis)
    lane = Lane("telegram:1", Limits(per_bot_per_second=10))
    first = await limiter.reserve(lane, ["1", "2"], lead=0.5)
    assert 0.45 <= first.delays[0] <= 0.5
    assert first.delays[1] == pytest.approx(first.delays[0] + 1 / planned_rate(10), abs=0.001)
    # A bot already booked past the lead keeps its own pace: the lead adds nothing to it.
    second = await limiter.reserve(lane, ["3"], lead=0.1)
    assert second.slots[0] == pytest.approx(first.slots[1] + 1 / planned_rate(10), abs=0.01)


async def test_a_busy_chat_does_not_hold_up_the_rest_of_its_batch_or_the_bot(redis: Redis):
    limiter = RateLimiter(redis)
    lane = Lane("telegram:1", Limits(per_bot_per_second=100))
    await limiter.reserve(lane, ["5"])  # chat 5 just got a message: its next slot is ~1.25 s away
    reservation = await limiter.reserve(lane, ["5", "6", "7"])
    # Chat 5 gets no slot (it would leave the bot idle for a second): it is told to come back.
    assert reservation.busy == [True, False, False]
    assert reservation.delays[0] >= 1.0
    assert reservation.delays[1] < 0.1 and reservation.delays[2] < 0.1
    assert (await limiter.reserve(lane, ["8"])).delays[0] < 0.1  # the bot was not held up


async def test_a_429_pauses_every_worker_of_the_bot_and_slows_it_down(redis: Redis, redis_url: str):
    elsewhere = Redis.from_url(redis_url)
    try:
        here, there = RateLimiter(redis), RateLimiter(elsewhere)
        before = await there.reserve(LANE, ["1"])
        await here.flood(LANE, retry_after=3)
        assert await here.held(LANE) > 2.5
        # The other worker learns of the pause within a tenth of a second, from Redis...
        await asyncio.sleep(0.15)
        assert await there.held(LANE) > 2.0
        # ...its slots taken before the pause are void...
        assert not there.still_valid(LANE, before)
        # ...and new slots start after the pause, at a quarter of the rate.
        after = await there.reserve(LANE, ["2", "3", "4"])
        assert after.delays[0] > 2.0
        assert after.factor == pytest.approx(SLOWDOWN)
        spacing = 1 / (planned_rate(30) * SLOWDOWN)  # planned a little under the limit
        assert after.delays[2] - after.delays[1] == pytest.approx(spacing, rel=0.01)
        assert there.still_valid(LANE, after)
    finally:
        await elsewhere.aclose()


async def test_429s_from_messages_already_on_the_wire_do_not_slow_the_bot_again(redis: Redis):
    limiter = RateLimiter(redis)
    await limiter.flood(LANE, retry_after=2)
    await limiter.flood(LANE, retry_after=2)  # same storm: another message sent before the pause
    await limiter.flood(LANE, retry_after=1)
    reservation = await limiter.reserve(LANE, ["1"])
    assert reservation.factor == pytest.approx(SLOWDOWN)
    assert reservation.delays[0] > 1.5  # the longest announced wait holds


async def test_after_a_quiet_period_the_rate_climbs_back(redis: Redis):
    limiter = RateLimiter(redis, quiet=0.2, doubling=0.2)
    await limiter.flood(LANE, retry_after=1)
    slowed = await limiter.reserve(LANE, ["1"])
    assert slowed.factor == pytest.approx(SLOWDOWN)
    deadline = time.monotonic() + 30
    factor = slowed.factor
    while factor < 1.0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        factor = (await limiter.reserve(LANE, ["2"])).factor
    assert factor == 1.0


async def test_honours_a_long_retry_after(redis: Redis):
    limiter = RateLimiter(redis)
    await limiter.flood(LANE, retry_after=35)
    reservation = await limiter.reserve(LANE, ["1"])
    assert 34 < reservation.delays[0] <= 35.5
    assert 34 < await limiter.held(LANE) <= 35.5


async def test_redis_down_keeps_what_this_worker_knows(redis_url: str):
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        limiter = RateLimiter(broken)
        await limiter.flood(LANE, retry_after=2)  # cannot share it; still waits here
        assert await limiter.held(LANE) > 1.5
    finally:
        await broken.aclose()
