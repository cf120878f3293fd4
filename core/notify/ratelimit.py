"""Send rate limits shared by every worker, kept in Redis (GCRA: one key per limit, no counters).

Telegram allows about 30 messages a second per bot, one a second per private chat and 20 a minute
per group chat. A worker asks before each send and waits its turn, so a broadcast to thousands
stays under the limits in steady state instead of bouncing off 429s.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

# Checks every limit and takes a slot in all of them only if all allow it, atomically.
# KEYS: one per limit; ARGV: interval in microseconds per limit. Returns 0, or microseconds to wait.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat + interval
  if tat - now > 0 then
    if tat - now > wait then wait = tat - now end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tats[i], 'PX', math.ceil(tonumber(ARGV[i]) / 1000) + 1000)
end
return 0
"""


# Telegram counts a chat's messages where they arrive; requests leave on time but do not arrive
# evenly spaced (a busy worker, the network), so a chat's slots are kept this much further apart.
# A quarter of a second costs nothing at one message a second and avoids 429s from jitter.
CHAT_MARGIN_SECONDS = 0.25


@dataclass(frozen=True)
class Limits:
    per_bot_per_second: float = 30.0
    per_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0


class RateLimiter:
    def __init__(self, redis: Redis, limits: Limits, prefix: str = "vestnik:rate") -> None:
        self.redis = redis
        self.limits = limits
        self.prefix = prefix
        self._script = redis.register_script(_GCRA)

    def _plan(self, bot: str, chat: str) -> tuple[list[str], list[int]]:
        per_chat = (
            60.0 / self.limits.per_group_per_minute
            if chat.startswith("-")
            else 1.0 / self.limits.per_chat_per_second
        )
        keys = [f"{self.prefix}:bot:{bot}", f"{self.prefix}:chat:{bot}:{chat}"]
        intervals = [
            round(1_000_000 / self.limits.per_bot_per_second),
            round((per_chat + CHAT_MARGIN_SECONDS) * 1_000_000),
        ]
        return keys, intervals

    async def acquire(self, bot: str, chat: str) -> None:
        """Return when one more message to ``chat`` fits every limit; that slot is taken."""
        await self._take(*self._plan(bot, chat))

    async def acquire_workspace(self, workspace_id: uuid.UUID, per_second: float) -> None:
        """Return when one more message of this workspace fits its own per-second limit (set by
        its owner, below the bot's); that slot is taken."""
        await self._take(
            [f"{self.prefix}:workspace:{workspace_id}"], [round(1_000_000 / per_second)]
        )

    async def _take(self, keys: list[str], intervals: list[int]) -> None:
        """Wait until every limit has a free slot, then take one in each."""
        while True:
            wait = int(await self._script(keys=keys, args=intervals))
            if wait == 0:
                return
            await asyncio.sleep(wait / 1_000_000)
