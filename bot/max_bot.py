"""The bot in MAX: the same Dispatcher, routers and handlers as in Telegram (bot/app.py), fed
MAX's updates through the MAX adapter (bot/max_adapter.py). Invites, commands, settings, answer
buttons and their forgery checks, code words, blocking and group chats are written once; what is
MAX's own is only how updates arrive (a paced long poll here, or the webhook in api/) and how
the handlers' calls reach MAX (the adapter's session, inside the shared rate limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import Update
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_dispatcher
from bot.max_adapter import MaxSession, MessageIds, bot_id_of, telegram_updates
from core.db import make_engine, make_sessionmaker
from core.delivery.channels import Channel
from core.delivery.ratelimit import RateLimiter
from core.settings import Settings
from worker.channels import build_channels, close_channels
from worker.max_api import MaxClient, MaxError

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_PACE = 0.6  # MAX allows about 2 long polls a second; the SDK's loop does not pace itself


class MaxBot:
    """Hands each MAX update to the shared Dispatcher, in the shape Telegram would have sent."""

    def __init__(
        self,
        client: MaxClient,
        sessions: async_sessionmaker[AsyncSession],
        signing_key: bytes,
        channels: Sequence[Channel],
        base_url: str = "",
        *,
        storage: BaseStorage | None = None,
        redis: Redis | None = None,
    ) -> None:
        """``storage``: conversation state (Redis in every process, so it survives restarts);
        ``redis``: the shared limiter's, so replies count within the same limits as the worker's
        sends (both default to this process alone)."""
        self.client, self.sessions, self.key = client, sessions, signing_key
        self.ids = MessageIds()
        self.redis = redis
        lane = next((c.lane for c in channels if c.name == "max"), None)
        limiter = RateLimiter(redis) if redis is not None else None
        session = MaxSession(client, self.ids, limiter, lane)
        self.bot = Bot(f"{bot_id_of(client.token)}:max", session=session)
        self.storage = storage or MemoryStorage()
        self.dispatcher: Dispatcher = build_dispatcher(
            sessions, self.storage, list(channels), base_url, signing_key
        )

    async def handle(self, update: dict[str, Any]) -> None:
        """One MAX update; each of its Bot API shapes in one transaction (bot.context)."""
        for shaped in telegram_updates(update, self.ids, self.bot):
            telegram = Update.model_validate({"update_id": 0, **shaped}, context={"bot": self.bot})
            await self.dispatcher.feed_update(
                self.bot, telegram, sessions=self.sessions, signing_key=self.key
            )

    async def close(self) -> None:
        await self.storage.close()
        if self.redis is not None:
            await self.redis.aclose()


async def run_max_bot(
    client: MaxClient, bot: MaxBot, stop: asyncio.Event, poll_seconds: int = 5
) -> None:
    """Long-poll MAX for updates until ``stop`` (development and small teams; production may
    use the webhook). A failed update is logged and the loop goes on. A poll in flight when
    ``stop`` is set is abandoned rather than waited for (Ctrl-C took its 5 s): MAX hands out
    updates after a marker, so what it was fetching is fetched again by the next start."""
    marker: int | None = None
    while not stop.is_set():
        started = asyncio.get_running_loop().time()
        try:
            polled = await _unless_stopped(stop, client.updates(marker, seconds=poll_seconds))
            if polled is None:
                break
            updates, marker = polled
        except MaxError as exc:
            wait = 5.0 if exc.status == 429 else 2.0
            log.warning("MAX updates: %s; again in %.0f s", exc, wait)
            await _sleep(stop, wait)
            continue
        except Exception:  # network: MAX or the emulator restarting
            log.exception("MAX updates failed; again in 2 s")
            await _sleep(stop, 2.0)
            continue
        for update in updates:
            try:
                await bot.handle(update)
            except Exception:
                log.exception("MAX update %s failed", update.get("update_type"))
        elapsed = asyncio.get_running_loop().time() - started
        await _sleep(stop, max(0.0, POLL_PACE - elapsed))


async def _unless_stopped(stop: asyncio.Event, call: Awaitable[T]) -> T | None:
    """The call's result, or None if ``stop`` is set first (the call is then cancelled)."""
    task = asyncio.ensure_future(call)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():  # stopped (or this coroutine itself cancelled)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def max_bot_for(
    settings: Settings,
    client: MaxClient,
    sessions: async_sessionmaker[AsyncSession],
    channels: Sequence[Channel],
    redis_url: str,
) -> MaxBot:
    """The MAX bot as a deployment runs it: state and limits in the shared Redis."""
    return MaxBot(
        client,
        sessions,
        settings.signing_key,
        channels,
        settings.public_url,
        storage=RedisStorage.from_url(redis_url),
        redis=Redis.from_url(redis_url),
    )


async def run_max_process(
    settings: Settings,
    redis_url: str,
    database_url: str,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """`vestnik bot` for MAX: long-polls MAX (or the emulator) until ``stop`` is set."""
    assert settings.max_token is not None
    engine = make_engine(database_url, pool_size=5)
    client = MaxClient(settings.max_token.get_secret_value(), str(settings.max_api_url))
    channels, bots = build_channels(settings)
    bot = max_bot_for(settings, client, make_sessionmaker(engine), channels, redis_url)
    ready()
    try:
        await run_max_bot(client, bot, stop)
    finally:
        await bot.close()
        await close_channels(channels, bots)
        await client.close()
        await engine.dispose()
