"""`vestnik bot`: the aiogram Dispatcher with one Router per feature, polling Telegram (or the
emulator) for updates. Conversation state (FSM) lives in Redis, so it survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiogram import Bot, Dispatcher
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand, MenuButtonWebApp, WebAppInfo
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import (
    answers,
    blocking,
    fallback,
    group_chats,
    joining,
    leads,
    member_commands,
    settings,
)
from bot import errors as bot_errors
from bot.context import PersonMiddleware
from core import kinds
from core.db import make_engine, make_sessionmaker
from core.delivery.channels import Channel
from core.errors import DomainError
from core.settings import Settings
from worker.channels import build_channels, make_bot

log = logging.getLogger(__name__)

COMMANDS = {
    "en": [
        ("events", "Your upcoming events"),
        ("next", "The next event"),
        ("settings", "Time zone, quiet hours, language"),
        ("calendar", "Add your events to your calendar"),
        ("unsubscribe", "Stop reminders"),
        ("resubscribe", "Turn reminders back on"),
        ("help", "What I can do"),
    ],
    "ru": [
        ("events", "Ваши ближайшие события"),
        ("next", "Ближайшее событие"),
        ("settings", "Часовой пояс, тихие часы, язык"),
        ("calendar", "События в вашем календаре"),
        ("unsubscribe", "Отключить напоминания"),
        ("resubscribe", "Включить напоминания"),
        ("help", "Что я умею"),
    ],
}


def build_dispatcher(
    sessions: async_sessionmaker[AsyncSession],
    storage: BaseStorage,
    channels: list[Channel],
    base_url: str,
    signing_key: bytes,
) -> Dispatcher:
    dispatcher = Dispatcher(storage=storage)
    kinds.install()
    dispatcher.update.outer_middleware(PersonMiddleware(sessions))
    for router in (
        answers.build_router(),
        group_chats.build_router(signing_key),
        joining.build_router(),
        settings.build_router(),
        member_commands.build_router(base_url),
        leads.build_router(),
        blocking.build_router(channels),
        fallback.build_router(),
    ):
        dispatcher.include_router(router)
    # One handler renders what core refused, in the member's language (bot/errors.py).
    dispatcher.errors.register(bot_errors.on_domain_error, ExceptionTypeFilter(DomainError))
    return dispatcher


def channels_for(settings: Settings, bot: Bot) -> list[Channel]:
    """The worker's channels (one registry), over this process's bot: the bot uses them to tell
    whether a member is still reachable."""
    return build_channels(settings, bot)[0]


async def set_commands(bot: Bot, public_url: str) -> None:
    """The command list in both languages, and the menu button that opens the Mini App
    (Telegram only opens Mini Apps over https, so a plain-http development URL gets none)."""
    for locale, commands in COMMANDS.items():
        await bot.set_my_commands(
            [BotCommand(command=c, description=d) for c, d in commands],
            language_code=None if locale == "en" else locale,
        )
    if public_url.startswith("https://"):
        await bot.set_chat_menu_button(
            menu_button=MenuButtonWebApp(
                text="vestnik", web_app=WebAppInfo(url=f"{public_url}/app")
            )
        )


async def run_bot(
    settings: Settings,
    redis_url: str,
    database_url: str,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """Poll for updates until ``stop`` is set."""
    assert settings.telegram_token is not None
    engine = make_engine(database_url, pool_size=5)
    sessions = make_sessionmaker(engine)
    bot = make_bot(settings.telegram_token.get_secret_value(), str(settings.telegram_api_url))
    storage = RedisStorage.from_url(redis_url)
    dispatcher = build_dispatcher(
        sessions, storage, channels_for(settings, bot), settings.public_url, settings.signing_key
    )
    with contextlib.suppress(Exception):  # cosmetic; Telegram may be briefly unavailable
        await set_commands(bot, settings.public_url)

    async def polling_started() -> None:
        ready()

    dispatcher.startup.register(polling_started)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=10,
            sessions=sessions,
            signing_key=settings.signing_key,
        )
    )
    try:
        await stop.wait()
    finally:
        # stop_polling() cancels the long poll in flight (cancelling the start_polling task
        # would leave aiogram's inner polling task running). Nothing is lost: an update is
        # confirmed to the server only by the next getUpdates offset.
        if not polling.done():
            await dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await storage.close()
        await bot.session.close()
        await engine.dispose()
