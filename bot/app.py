"""`vestnik bot`: the aiogram Dispatcher, polling Telegram (or the emulator) for updates."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Dispatcher

from bot import answers
from core.db import make_engine, make_sessionmaker
from core.settings import Settings
from worker.channels import make_bot

log = logging.getLogger(__name__)


def build_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.include_router(answers.build_router())
    return dispatcher


async def run_bot(settings: Settings, database_url: str, stop: asyncio.Event) -> None:
    """Poll for updates until ``stop`` is set."""
    assert settings.telegram_token is not None
    engine = make_engine(database_url, pool_size=5)
    bot = make_bot(settings.telegram_token.get_secret_value(), str(settings.telegram_api_url))
    dispatcher = build_dispatcher()
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=10,
            sessions=make_sessionmaker(engine),
            signing_key=settings.signing_key,
        )
    )
    try:
        await stop.wait()
    finally:
        # Cancel rather than stop_polling(), which sits out the current long poll; nothing is
        # lost: an update is confirmed to the server only by the next getUpdates offset.
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await bot.session.close()
        await engine.dispose()
