"""Webhook mode: Telegram (or the emulator) posts updates to the API, which hands them to the
same Dispatcher `vestnik bot` polls with. Only calls carrying the secret token are accepted."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.redis import RedisStorage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_dispatcher, channels_for, set_commands
from core.settings import Settings
from worker.channels import make_bot

log = logging.getLogger(__name__)


class WebhookBot:
    def __init__(
        self, settings: Settings, redis_url: str, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        assert settings.telegram_token is not None and settings.bot_webhook_url is not None
        self.settings = settings
        self.sessions = sessions
        self.bot: Bot = make_bot(
            settings.telegram_token.get_secret_value(), str(settings.telegram_api_url)
        )
        self.storage = RedisStorage.from_url(redis_url)
        self.dispatcher: Dispatcher = build_dispatcher(
            sessions,
            self.storage,
            channels_for(settings, self.bot),
            settings.public_url,
            settings.signing_key,
        )

    async def start(self) -> None:
        """Tell Telegram where to post, with the secret it must send back."""
        await self.bot.set_webhook(
            url=str(self.settings.bot_webhook_url), secret_token=self.settings.webhook_secret
        )
        try:
            await set_commands(self.bot, self.settings.public_url)
        except Exception:  # cosmetic; Telegram may be briefly unavailable
            log.warning("could not set the bot's command list")

    def accepts(self, secret: str | None) -> bool:
        return secret is not None and hmac.compare_digest(
            secret.encode(), self.settings.webhook_secret.encode()
        )

    async def handle(self, update: dict[str, Any]) -> None:
        await self.dispatcher.feed_raw_update(
            self.bot, update, sessions=self.sessions, signing_key=self.settings.signing_key
        )

    async def close(self) -> None:
        await self.storage.close()
        await self.bot.session.close()
