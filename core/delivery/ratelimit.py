"""Send rate limits shared by every worker, kept in Redis, and the messenger's flood control.

Telegram allows about 30 messages a second per bot, one a second per private chat and 20 a minute
per group chat. A worker reserves slots for a whole batch of messages in one round trip (GCRA
virtual scheduling: one "next free instant" per limit, no counters) and each message waits for its
slot, so thousands of messages stay under the limits instead of bouncing off 429s.

When the messenger still answers 429 (another program on the same bot, a stricter limit than
configured), its ``retry_after`` pauses *every* send of that bot in every worker: the pause lives
in Redis and each reservation starts after it. The bot's rate is then lowered (a quarter of what it
was) and climbs back, doubling every ``RECOVERY_DOUBLING`` once ``RECOVERY_QUIET`` passed without
a 429 — Telegram lengthens the wait of bots that keep sending, so probing must be gentle.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# After a 429 the bot's rate is multiplied by this, and never goes under MIN_FACTOR of its limit.
SLOWDOWN = 0.25
MIN_FACTOR = 0.05
RECOVERY_QUIET_SECONDS = 10.0
RECOVERY_DOUBLING_SECONDS = 20.0
# How stale this process's view of another worker's pause may be: at most this long after a 429
# seen elsewhere, a message already holding a slot may still leave.
PAUSE_CHECK_SECONDS = 0.1

_FACTOR = """
local function factor(key, now, quiet, doubling)
  local a = redis.call('HMGET', key, 'factor', 'at')
  if not a[1] then return 1 end
  local f = tonumber(a[1])
  local calm = now - tonumber(a[2]) - quiet
  if calm > 0 then f = f * 2 ^ (calm / doubling) end
  if f > 1 then f = 1 end
  return f
end
"""

# Reserves one slot per message, in every limit at once. KEYS: pause, adapt, bot, workspace, then
# one per chat. ARGV: bot interval (µs, 0 = none), workspace interval (µs, 0 = none), quiet and
# doubling (µs), then one interval per chat (µs, 0 = none), then how long a message may wait for
# its chat (µs), then how long from now the first slot may be at the earliest (µs). Messages to
# chats that are free soonest get the earliest slots, so one busy chat does not hold up the batch.
# Returns Redis's now, the pause end, the rate factor ×1e6, then each message's slot as µs from
# now, or minus the µs until its chat is free if that is too long.
_RESERVE = (
    _FACTOR
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(redis.call('GET', KEYS[1]) or 0)
local start = now
if pause > start then start = pause end
local f = factor(KEYS[2], now, tonumber(ARGV[3]), tonumber(ARGV[4]))
local bot_interval = tonumber(ARGV[1]) / f
local ws_interval = tonumber(ARGV[2])
local bot_tat = tonumber(redis.call('GET', KEYS[3]) or 0)
local ws_tat = 0
if ws_interval > 0 then ws_tat = tonumber(redis.call('GET', KEYS[4]) or 0) end
local n = #KEYS - 4
local chat_tat = {}
local order = {}
for i = 1, n do
  chat_tat[i] = 0
  if tonumber(ARGV[4 + i]) > 0 then chat_tat[i] = tonumber(redis.call('GET', KEYS[4 + i]) or 0) end
  order[i] = i
end
table.sort(order, function(a, b)
  if chat_tat[a] == chat_tat[b] then return a < b end
  return chat_tat[a] < chat_tat[b]
end)
local slots = {}
local seen = {}
local hold = tonumber(ARGV[5 + n])
local lead_until = now + tonumber(ARGV[6 + n])
if lead_until > start then start = lead_until end
for _, i in ipairs(order) do
  local key = KEYS[4 + i]
  local ctat = seen[key] or chat_tat[i]
  local free = math.max(start, bot_tat, ws_tat)
  if ctat > free + hold then
    -- The chat is busy well past the bot's next slot: no slot now (taking one would leave the
    -- bot idle until then); the message comes back when the chat is free.
    slots[i] = -(ctat - now)
  else
    local s = math.max(free, ctat)
    bot_tat = s + bot_interval
    if ws_interval > 0 then ws_tat = s + ws_interval end
    local ci = tonumber(ARGV[4 + i])
    if ci > 0 then
      seen[key] = s + ci
      redis.call('SET', key, s + ci, 'PX', math.ceil((s + ci - now) / 1000) + 1000)
    end
    slots[i] = s - now
  end
end
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[3], bot_tat, 'PX', math.ceil((bot_tat - now) / 1000) + 1000)
end
if ws_interval > 0 then
  redis.call('SET', KEYS[4], ws_tat, 'PX', math.ceil((ws_tat - now) / 1000) + 1000)
end
local out = {now, pause, math.floor(f * 1000000)}
for i = 1, n do out[3 + i] = slots[i] end
return out
"""
)

# A 429: KEYS pause, adapt, bot; ARGV retry_after, quiet, doubling, slowdown, min factor (µs and
# ×1e6). A 429 that arrives while the bot is already paused came from a message sent before the
# pause began: it may lengthen the pause but does not slow the bot again. Returns the pause end.
_FLOOD = (
    _FACTOR
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(redis.call('GET', KEYS[1]) or 0)
local until_ = now + tonumber(ARGV[1])
if pause <= now then
  local f = factor(KEYS[2], now, tonumber(ARGV[2]), tonumber(ARGV[3])) * tonumber(ARGV[4]) / 1000000
  local floor = tonumber(ARGV[5]) / 1000000
  if f < floor then f = floor end
  redis.call('HSET', KEYS[2], 'factor', tostring(f), 'at', until_)
  redis.call('PEXPIRE', KEYS[2], 3600000)
  redis.call('DEL', KEYS[3])
end
if until_ > pause then
  redis.call('SET', KEYS[1], until_, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
  pause = until_
end
return pause
"""
)

# Telegram counts a chat's messages where they arrive; requests leave on time but do not arrive
# evenly spaced (a busy worker, the network), so a chat's slots are kept this much further apart.
# A quarter of a second costs nothing at one message a second and avoids 429s from jitter.
CHAT_MARGIN_SECONDS = 0.25
# A message whose chat is not free until this long after the bot's next slot takes no slot now.
CHAT_HOLD_SECONDS = 0.5
# Telegram counts the bot's messages where they arrive too, so its rate is planned a little under
# its limit: several workers' messages planned 1/rate apart can arrive bunched, and a second
# counted at arrival must still hold no more than the limit. The slack is 3% of the limit, and
# never under two messages a second: with one (tried for the MAX issue, to give 29/s of 30 rather
# than 28), a CPU-starved machine had two late arrivals land in one second of the 4-worker test
# (21 at a limit of 20). Throughput is the price (at 30/s, 28/s = 0.93 of the limit); a 429 that
# slips through pauses and slows the lane for every worker (below).
BOT_SHARE = 0.97
MIN_SLACK_PER_SECOND = 2.0


def planned_rate(limit: float) -> float:
    """The messages a second the bot is planned at, for a limit of ``limit``."""
    return min(limit * BOT_SHARE, max(limit - MIN_SLACK_PER_SECOND, limit / 2))


@dataclass(frozen=True)
class Limits:
    """A messenger's limits; ``per_bot_per_second=None`` for a channel without one (email)."""

    per_bot_per_second: float | None = 30.0
    per_chat_per_second: float | None = 1.0
    per_group_per_minute: float | None = 20.0


@dataclass(frozen=True)
class Lane:
    """One sender with its own limits: a Telegram bot (``telegram:<bot id>``), the mail server."""

    name: str
    limits: Limits


@dataclass
class Reservation:
    delays: list[float]  # seconds from now until each message's slot, in the order asked
    slots: list[float]  # the same slots as time.monotonic() instants of this process
    factor: float  # the bot's current share of its limit (1.0 unless a 429 slowed it)
    epoch: int  # pauses this process had learned of when the slots were taken
    # Per message: no slot was taken, its chat is busy until ``delays[i]`` from now (send later).
    busy: list[bool] = field(default_factory=list)

    @property
    def spaced(self) -> bool:
        """Slots far enough apart (over 10 ms) that a message late for one would bunch."""
        return len(self.delays) > 1 and (self.delays[-1] - self.delays[0]) / len(self.delays) > 0.01


@dataclass
class _Pause:
    until: float = 0.0  # time.monotonic() deadline of the latest pause this process knows of
    epoch: int = 0  # bumped by every pause learned: slots taken before it are void
    checked: float = float("-inf")
    checking: asyncio.Future[None] | None = field(default=None, repr=False)


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        prefix: str = "vestnik:rate",
        *,
        quiet: float = RECOVERY_QUIET_SECONDS,
        doubling: float = RECOVERY_DOUBLING_SECONDS,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.quiet, self.doubling = quiet, doubling
        self._reserve = redis.register_script(_RESERVE)
        self._flood = redis.register_script(_FLOOD)
        self._pauses: dict[str, _Pause] = {}
        self.floods = 0  # 429s reported by this process, for logs and benchmarks
        # Redis's clock minus this machine's, from the quickest round trip seen (NTP's idea):
        # slots are instants on Redis's clock, so a worker that stalls between Redis answering
        # and reading the answer still knows when its slots are (and that it is late).
        self._offset = 0.0
        self._offset_rtt = float("inf")
        self._offset_at = 0.0

    def _keys(self, lane: str) -> tuple[str, str, str]:
        return (
            f"{self.prefix}:pause:{lane}",
            f"{self.prefix}:adapt:{lane}",
            f"{self.prefix}:bot:{lane}",
        )

    def _chat_interval(self, limits: Limits, chat: str) -> int:
        if chat.startswith("-"):
            if limits.per_group_per_minute is None:
                return 0
            return _us(60.0 / limits.per_group_per_minute + CHAT_MARGIN_SECONDS)
        if limits.per_chat_per_second is None:
            return 0
        return _us(1.0 / limits.per_chat_per_second + CHAT_MARGIN_SECONDS)

    async def reserve(
        self,
        lane: Lane,
        chats: Sequence[str],
        workspace: tuple[uuid.UUID, float] | None = None,
        lead: float = 0.0,
    ) -> Reservation:
        """Take one slot per message to ``chats`` (in one round trip) under the lane's limits,
        its current pause and slowdown, and the workspace's own per-second limit if given; none
        sooner than ``lead`` seconds from now (time the caller needs before its first send)."""
        pause_key, adapt_key, bot_key = self._keys(lane.name)
        ws_key = f"{self.prefix}:workspace:{workspace[0]}" if workspace else f"{self.prefix}:-"
        limits = lane.limits
        bot = _us(1.0 / planned_rate(limits.per_bot_per_second)) if limits.per_bot_per_second else 0
        ws = _us(1.0 / workspace[1]) if workspace else 0
        args = [bot, ws, _us(self.quiet), _us(self.doubling)]
        args += [self._chat_interval(limits, chat) for chat in chats]
        args += [_us(CHAT_HOLD_SECONDS), _us(lead)]
        keys = [pause_key, adapt_key, bot_key, ws_key]
        keys += [f"{self.prefix}:chat:{lane.name}:{chat}" for chat in chats]
        known = self._pauses.setdefault(lane.name, _Pause())
        # A 429 seen here while the slots were being taken voids them (Redis may have planned
        # them before the pause), unless Redis's answer shows the pause: then they follow it.
        epoch = known.epoch
        asked, asked_wall = time.monotonic(), time.time()
        answer = [int(x) for x in await self._reserve(keys=keys, args=args)]
        read, read_wall = time.monotonic(), time.time()
        now, pause, factor = answer[:3]
        self._sync(now / 1_000_000, asked_wall, read_wall, read - asked)
        # Redis's "now" as an instant of this process's monotonic clock.
        redis_now = read + (now / 1_000_000 - self._offset - read_wall)
        if pause > now:
            self._learn(lane.name, redis_now + (pause - now) / 1_000_000)
            epoch = known.epoch
        delays = [abs(slot) / 1_000_000 for slot in answer[3:]]
        busy = [slot < 0 for slot in answer[3:]]
        slots = [redis_now + d for d in delays]
        return Reservation(delays, slots, factor / 1_000_000, epoch, busy)

    def _sync(self, redis_time: float, asked: float, read: float, rtt: float) -> None:
        # A sample's error is at most half its round trip; older samples count a little worse
        # (clocks drift), so the estimate follows a drifting clock.
        aged = self._offset_rtt + (read - self._offset_at) * 0.001
        if rtt <= aged:
            self._offset = redis_time - (asked + read) / 2
            self._offset_rtt, self._offset_at = rtt, read

    def still_valid(self, lane: Lane, reservation: Reservation) -> bool:
        """False once a pause began after the slots were taken: they were planned at a rate the
        messenger refused, and must be taken again after the pause."""
        return self._pauses.setdefault(lane.name, _Pause()).epoch == reservation.epoch

    async def flood(self, lane: Lane, retry_after: float) -> None:
        """The messenger answered 429: pause every send of this lane for ``retry_after`` seconds,
        here at once and in every other worker through Redis, and slow the lane down."""
        self.floods += 1
        self._learn(lane.name, time.monotonic() + retry_after)
        pause_key, adapt_key, bot_key = self._keys(lane.name)
        args = [
            _us(retry_after),
            _us(self.quiet),
            _us(self.doubling),
            _us(SLOWDOWN),
            _us(MIN_FACTOR),
        ]
        try:
            await self._flood(keys=[pause_key, adapt_key, bot_key], args=args)
        except RedisError:  # this worker still waits; the others learn from their own 429
            log.warning("could not share a %s s flood wait through Redis", retry_after)

    async def held(self, lane: Lane) -> float:
        """Seconds left in a pause of this lane (0 if none), as seen at most PAUSE_CHECK_SECONDS
        ago in Redis. Checked just before each send; never raises (Redis down: this process's own
        knowledge)."""
        pause = self._pauses.get(lane.name) or self._pauses.setdefault(lane.name, _Pause())
        now = time.monotonic()
        # One check at a time is waited for; others sending meanwhile go on what is known.
        if now - pause.checked > PAUSE_CHECK_SECONDS and pause.checking is None:
            pause.checking = asyncio.ensure_future(self._check(lane.name, pause))
            await asyncio.shield(pause.checking)
        return max(0.0, pause.until - now)

    async def _check(self, lane: str, pause: _Pause) -> None:
        asked = time.monotonic()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.pttl(self._keys(lane)[0])
                (ttl,) = await pipe.execute()
            if ttl is not None and ttl > 1000:  # the key outlives its pause by one second
                self._learn(lane, asked + (ttl - 1000) / 1000)
        except RedisError:
            pass
        finally:
            pause.checked = time.monotonic()
            pause.checking = None

    def _learn(self, lane: str, until: float) -> None:
        pause = self._pauses.setdefault(lane, _Pause())
        if until <= pause.until:
            return
        if pause.until < time.monotonic():  # a new pause, not a longer one: earlier slots are void
            pause.epoch += 1
        pause.until = until

    async def acquire(self, lane: Lane, chat: str) -> None:
        """Wait for one slot (a single message outside a batch: a chat announcement)."""
        while True:
            reservation = await self.reserve(lane, [chat])
            await asyncio.sleep(max(0.0, reservation.slots[0] - time.monotonic()))
            if not reservation.busy[0]:
                return


def redis_pool(url: str, max_connections: int, timeout: float = 30.0) -> Redis:
    """A client whose pool waits for a free connection (up to ``timeout``) instead of failing
    when every connection is busy: a burst slows down, it never loses a call."""
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout)
    return Redis(connection_pool=pool)
