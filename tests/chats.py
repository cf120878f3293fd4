"""People talking to the bot on either messenger, for tests that run once per messenger.

``talk`` (parametrised: telegram, max) starts the bot the way `vestnik bot` does for that
messenger, polling its emulator over HTTP, and gives each person a ``Chat``: what they send, what
they press, what the bot wrote to them. People are written once, Telegram-shaped
({"id", "first_name", "last_name", "language_code"}); on MAX the same person is
{"user_id", "name"} with that locale. ``/start <payload>`` on MAX is opening the bot from the
invite link (a ``bot_started`` update with the payload), as a person would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram.fsm.storage.redis import RedisStorage
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import run_bot
from bot.context import Finished
from bot.max_bot import MaxBot, run_max_bot
from core.db import make_sessionmaker
from core.delivery.channels import Channel
from core.settings import Settings
from emulators.max import MaxApiEmulator, MaxMessage
from emulators.telegram import BotApiEmulator, Message
from tests.test_dispatch import KEY
from worker.channels import TelegramChannel, make_bot
from worker.max_api import MaxClient
from worker.max_channel import MaxChannel

MAX_TOKEN = "max-test-token"
MESSENGERS = ["telegram", "max"]


async def until(condition: Callable[[], Any], seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the bot"
        await asyncio.sleep(0.05)


@dataclass
class Said:
    """A message of the bot's, on either messenger (its text and keyboard follow edits)."""

    raw: Message | MaxMessage

    @property
    def text(self) -> str:
        return self.raw.text

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, data) of each button that calls back."""
        if isinstance(self.raw, MaxMessage):
            return [(b["text"], b["payload"]) for b in self.raw.buttons if b["type"] == "callback"]
        rows = (self.raw.reply_markup or {}).get("inline_keyboard", [])
        return [
            (b["text"], b["callback_data"]) for row in rows for b in row if "callback_data" in b
        ]

    @property
    def links(self) -> list[tuple[str, str]]:
        if isinstance(self.raw, MaxMessage):
            return [(b["text"], b["url"]) for b in self.raw.buttons if b["type"] == "link"]
        rows = (self.raw.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b["url"]) for row in rows for b in row if "url" in b]


class Talk:
    """One messenger's emulator and bot, and the people on it."""

    def __init__(
        self, messenger: str, telegram: BotApiEmulator, max_api: MaxApiEmulator | None
    ) -> None:
        self.messenger, self.telegram, self.max = messenger, telegram, max_api

    @property
    def on_max(self) -> bool:
        return self.messenger == "max"

    def chat(self, user: dict[str, Any]) -> Chat:
        return Chat(self, user)

    def account(self, user: dict[str, Any]) -> dict[str, int]:
        """The member fields that give them this person's account on the messenger."""
        return {f"{self.messenger}_user_id": int(user["id"])}

    def max_user(self, user: dict[str, Any]) -> dict[str, Any]:
        name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
        return {"user_id": int(user["id"]), "name": name}

    def sent_to(self, user: dict[str, Any]) -> list[Said]:
        if self.max is not None and self.on_max:
            return [Said(m) for m in self.max.sent_to(int(user["id"]))]
        return [Said(m) for m in self.telegram.sent_to(int(user["id"]))]

    def notices(self) -> list[str]:
        """What each answered press said (a toast or an alert), in order."""
        if self.max is not None and self.on_max:
            return [str(a.get("notification", "")) for a in self.max.callback_answers]
        return [str(a.get("text") or "") for a in self.telegram.callback_answers]

    def _activity(self) -> tuple[int, ...]:
        """Changes a press may make: answers, messages, edits, keyboards."""
        if self.max is not None and self.on_max:
            api = self.max
            edits = sum(len(m.edits) for m in api.messages)
            keys = sum(len(m.buttons) for m in api.messages)
            return len(api.callback_answers), len(api.messages), edits, keys
        return (len(self.telegram.callback_answers),)

    def refusals(self) -> list[Any]:
        """The calls the emulator refused (4xx) since it started."""
        if self.max is not None and self.on_max:
            return list(self.max.refusals)
        return list(self.telegram.refusals)

    # -- group chats ------------------------------------------------------------------------------
    def in_group(self, chat: dict[str, Any]) -> list[Said]:
        if self.max is not None and self.on_max:
            return [Said(m) for m in self.max.in_chat(int(chat["id"]))]
        return [Said(m) for m in self.telegram.sent_to(int(chat["id"]))]

    def says_in_group(self, user: dict[str, Any], chat: dict[str, Any], text: str) -> None:
        if self.max is not None and self.on_max:
            locale = str(user.get("language_code") or "en")
            self.max.user_sends(self.max_user(user), text, locale, chat={**chat})
        else:
            self.telegram.user_sends(user, text, chat=chat)

    async def press_in_group(self, user: dict[str, Any], message: Said, index: int) -> str:
        """``user`` presses the ``index``-th button of a group post; what the press said."""
        seen = len(self.notices())
        data = message.buttons[index][1]
        if self.max is not None and isinstance(message.raw, MaxMessage):
            self.max.user_presses(self.max_user(user), message.raw, data)
        else:
            assert isinstance(message.raw, Message)
            self.telegram.user_presses(user, message.raw, data)
        await until(lambda: len(self.notices()) > seen)
        return self.notices()[-1]

    def channel(self, engine_bot: Any) -> Channel:
        """The worker's channel for this messenger (over ``engine_bot`` on Telegram)."""
        if self.max is not None and self.on_max:
            return MaxChannel(MaxClient(MAX_TOKEN, self.max.base_url), "test")
        return TelegramChannel(engine_bot)


class Chat:
    """One person's private chat with the bot."""

    def __init__(self, talk: Talk, user: dict[str, Any]) -> None:
        self.talk, self.user = talk, user

    @property
    def messages(self) -> list[Said]:
        return self.talk.sent_to(self.user)

    @property
    def locale(self) -> str:
        return str(self.user.get("language_code") or "en")

    async def send(self, text: str, replies: int = 1) -> list[Said]:
        """Send ``text``; return the bot's next ``replies`` messages, once the bot has finished
        the update (its changes committed)."""
        seen, finished = len(self.messages), Finished.count
        if self.talk.on_max and self.talk.max is not None:
            person = self.talk.max_user(self.user)
            if text == "/start" or text.startswith("/start "):
                payload = text.partition(" ")[2].strip() or None
                self.talk.max.user_starts(person, payload, self.locale)
            else:
                self.talk.max.user_sends(person, text, self.locale)
        else:
            self.talk.telegram.user_sends(self.user, text)
        await until(lambda: Finished.count > finished)
        return await self._replies(seen, replies)

    async def press(self, message: Said, label: str, replies: int = 0) -> list[Said]:
        [data] = [d for text, d in message.buttons if text == label]
        return await self.press_data(message, data, replies)

    async def press_data(self, message: Said, data: str, replies: int = 0) -> list[Said]:
        """A press carrying ``data`` under ``message`` (a forged one, or under someone else's)."""
        seen, before, finished = len(self.messages), self.talk._activity(), Finished.count
        if self.talk.on_max and self.talk.max is not None:
            assert isinstance(message.raw, MaxMessage)
            self.talk.max.user_presses(
                self.talk.max_user(self.user), message.raw, data, self.locale
            )
        else:
            assert isinstance(message.raw, Message)
            self.talk.telegram.user_presses(self.user, message.raw, data)
        await until(lambda: Finished.count > finished)
        await until(lambda: self.talk._activity() != before or len(self.messages) > seen)
        return await self._replies(seen, replies)

    def blocks(self, blocked: bool = True) -> None:
        """The person blocks the bot (on MAX: stops it), or unblocks it."""
        if self.talk.on_max and self.talk.max is not None:
            if blocked:
                self.talk.max.user_stops(self.talk.max_user(self.user))
        else:
            self.talk.telegram.user_blocks(self.user, blocked)

    async def _replies(self, seen: int, count: int) -> list[Said]:
        await until(lambda: len(self.messages) >= seen + count)
        await asyncio.sleep(0.05 if count else 0.3)  # let a wrong extra reply show up
        return self.messages[seen:]


def _forget_conversations(redis_url: str) -> Any:
    async def forget() -> None:
        redis = Redis.from_url(redis_url)
        async for key in redis.scan_iter("fsm:*"):  # each test starts with no conversation state
            await redis.delete(key)
        await redis.aclose()

    return forget()


@asynccontextmanager
async def _telegram_bot(
    emulator: BotApiEmulator, settings: Settings, pg_url: str
) -> AsyncIterator[Talk]:
    """`vestnik bot` for Telegram, polling the emulator."""
    assert settings.redis_url is not None
    await _forget_conversations(settings.redis_url)
    configured = settings.model_copy(
        update={
            "telegram_token": SecretStr("123456:BOT"),
            "telegram_api_url": emulator.base_url,
            "telegram_bot_username": "vestnik_emulator_bot",
            "secret_key": SecretStr(KEY.decode()),  # what run_due signs buttons with
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(configured, settings.redis_url, pg_url, stop))
    try:
        yield Talk("telegram", emulator, None)
    finally:
        stop.set()
        await task


@asynccontextmanager
async def _max_bot(
    emulator: BotApiEmulator, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[Talk]:
    """The MAX bot, long-polling a MAX emulator of its own, as `vestnik bot` runs it."""
    assert settings.redis_url is not None
    await _forget_conversations(settings.redis_url)
    max_api = MaxApiEmulator(MAX_TOKEN)
    await max_api.start()
    client = MaxClient(MAX_TOKEN, max_api.base_url)
    sender = make_bot("123456:BOT", emulator.base_url)
    channels: list[Channel] = [MaxChannel(client, "test"), TelegramChannel(sender)]
    bot = MaxBot(
        client,
        make_sessionmaker(engine),
        KEY,
        channels,
        settings.public_url,
        storage=RedisStorage.from_url(settings.redis_url),
        redis=Redis.from_url(settings.redis_url),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_max_bot(client, bot, stop))
    try:
        yield Talk("max", emulator, max_api)
    finally:
        stop.set()
        await task
        await bot.close()
        await client.close()
        await sender.session.close()
        await max_api.stop()


@pytest.fixture(params=MESSENGERS)
async def talk(
    request: pytest.FixtureRequest,
    emulator: BotApiEmulator,
    settings: Settings,
    pg_url: str,
    engine: AsyncEngine,
) -> AsyncIterator[Talk]:
    """The bot on one messenger (the test runs once for each), polling its emulator."""
    if request.param == "telegram":
        async with _telegram_bot(emulator, settings, pg_url) as talking:
            yield talking
    else:
        async with _max_bot(emulator, settings, engine) as talking:
            yield talking


@pytest.fixture
async def telegram_bot(
    emulator: BotApiEmulator, settings: Settings, pg_url: str
) -> AsyncIterator[Talk]:
    """The Telegram bot alone: for stories that run whole processes or a browser once."""
    async with _telegram_bot(emulator, settings, pg_url) as talking:
        yield talking
