"""The channel registry: Telegram through aiogram, email, and a log channel for development.

``build_channels`` is the one place the list of channels is made, in order of preference (a
member gets each message on the first one that reaches them); the worker sends through it and the
bot uses the same list to tell whether a member is still reachable."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from itertools import count

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
)
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.delivery.channels import Channel, OutboundMessage, Outcome, OutcomeKind
from core.delivery.ratelimit import Lane, Limits
from core.settings import Settings
from core.teams.models import Member, Messenger

log = logging.getLogger(__name__)

# HTTP clients close a connection idle this long (httpx: 5 s, aiohttp: 15 s); a channel idle for
# less has its connection still open and needs no warming.
WARM_WITHIN_SECONDS = 3.0


class Warmth:
    """When a channel last used its connection, and a cheap request to open one after a pause
    (``Channel.warm``). Against the real services a cold connection is a TCP and TLS handshake
    (100–300 ms to a distant server) before the first message of a fan-out, which then arrives
    late and bunched with the next. (Not measurable against the local emulators, whose
    connections open in a millisecond.)"""

    def __init__(
        self, ping: Callable[[], Awaitable[object]], within: float = WARM_WITHIN_SECONDS
    ) -> None:
        self._ping = ping
        self.within = within
        self._used = -math.inf

    def used(self) -> None:
        self._used = time.monotonic()

    async def warm(self) -> None:
        if time.monotonic() - self._used < self.within:
            return
        try:
            await self._ping()
        except Exception as exc:  # the send that follows meets the same trouble and reports it
            log.info("could not open a connection ahead of a batch: %s", exc)
        self.used()


# Failures Telegram gives no retry_after for (5xx, a request that never left) wait at least
# this long; the engine backs off further after each attempt (core.delivery.retries).
SERVER_ERROR_WAIT = 1.0
# aiogram parses every answer as Response[<method's result>]; pydantic caches that generic class
# only weakly, so without a reference it may be rebuilt on every call (milliseconds of CPU each).
_RESPONSE_TYPES = tuple(
    Response[m.__returning__]  # type: ignore[name-defined]
    for m in (SendMessage, EditMessageText, EditMessageReplyMarkup, AnswerCallbackQuery)
)
# Errors raised before the request left (nothing reached Telegram): safe to send again. Any other
# network failure (a timeout, a dropped connection) may have delivered the message.
_NOT_SENT = ("ClientConnectorError", "ClientConnectorDNSError", "ClientProxyConnectionError")


def make_bot(token: str, api_url: str) -> Bot:
    """An aiogram Bot talking to ``api_url`` (Telegram's, or the local emulator)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
    return Bot(token, session=session)


class TelegramChannel:
    name = "telegram"
    answers_by_link = False
    button_data_limit = 64  # Bot API: callback_data is 1-64 bytes
    posts_in_group_chats = True

    def __init__(self, bot: Bot, limits: Limits | None = None) -> None:
        self.bot = bot
        self.lane = Lane(f"telegram:{bot.id}", limits or Limits())
        self._warmth = Warmth(bot.get_me)

    async def warm(self) -> None:
        await self._warmth.warm()

    def address(self, member: Member) -> str | None:
        return member.chat_on(Messenger.telegram)

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        markup = None
        rows: list[list[InlineKeyboardButton]] = []
        if message.buttons:
            rows.append(
                [
                    InlineKeyboardButton(text=label, callback_data=data)
                    for (label, _), data in zip(message.buttons, button_data, strict=True)
                ]
            )
        # One link a row: labels stay readable on a phone.
        rows += [[InlineKeyboardButton(text=label, url=url)] for label, url in message.links]
        if rows:
            markup = InlineKeyboardMarkup(inline_keyboard=rows)
        self._warmth.used()
        try:
            sent = await self.bot.send_message(
                chat_id=int(address), text=message.text, reply_markup=markup
            )
        except TelegramRetryAfter as exc:
            return Outcome(
                OutcomeKind.retry,
                retry_after=exc.retry_after,
                reason=exc.message,
                rate_limited=True,
            )
        except TelegramForbiddenError as exc:
            if "can't initiate conversation" in exc.message.lower():
                return Outcome(OutcomeKind.not_joined, reason=exc.message)
            return Outcome(OutcomeKind.unreachable, reason=exc.message)
        except TelegramBadRequest as exc:
            kind = (
                OutcomeKind.unreachable
                if "chat not found" in exc.message.lower()
                else OutcomeKind.failed
            )
            return Outcome(kind, reason=exc.message)
        except TelegramServerError as exc:
            return Outcome(OutcomeKind.retry, retry_after=SERVER_ERROR_WAIT, reason=exc.message)
        except TelegramNetworkError as exc:
            if exc.message.startswith(_NOT_SENT):
                return Outcome(OutcomeKind.retry, retry_after=SERVER_ERROR_WAIT, reason=exc.message)
            return Outcome(OutcomeKind.unknown, reason=f"no answer from Telegram: {exc.message}")
        except TimeoutError as exc:
            return Outcome(OutcomeKind.unknown, reason=f"no answer from Telegram: {exc!r}")
        except TelegramAPIError as exc:
            return Outcome(OutcomeKind.failed, reason=exc.message)
        return Outcome(OutcomeKind.sent, provider_message_id=str(sent.message_id))


class LogChannel:
    """Writes messages to the log instead of sending them (development without any messenger)."""

    name = "log"
    answers_by_link = False
    button_data_limit = None
    posts_in_group_chats = False
    lane = Lane("log", Limits(None, None, None))
    _ids = count(1)

    def address(self, member: Member) -> str | None:
        return f"{member.name} <{member.id}>"

    async def warm(self) -> None:
        """Nothing to open: it writes to the log."""

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        buttons = " ".join(
            [f"[{label}]" for label, _ in message.buttons]
            + [f"[{label} → {url}]" for label, url in message.links]
        )
        log.info("to %s: %s %s", address, message.text, buttons)
        return Outcome(OutcomeKind.sent, provider_message_id=f"log-{next(self._ids)}")


def build_channels(settings: Settings, bot: Bot | None = None) -> tuple[list[Channel], list[Bot]]:
    """The channels this deployment sends through, in order of preference, and the bots this
    call made (to close at exit). ``bot``: the bot process's own Bot, used instead of a new one."""
    from worker.mail import EmailChannel  # worker.mail imports this module's neighbours only

    channels: list[Channel] = []
    bots: list[Bot] = []
    if settings.telegram_token is not None or bot is not None:
        if bot is None:
            token = settings.telegram_token
            assert token is not None
            bot = make_bot(token.get_secret_value(), str(settings.telegram_api_url))
            bots.append(bot)
        limits = Limits(
            per_bot_per_second=settings.telegram_rate_per_second,
            per_chat_per_second=settings.telegram_chat_rate_per_second,
            per_group_per_minute=settings.telegram_group_rate_per_minute,
        )
        channels.append(TelegramChannel(bot, limits))
    if settings.max_token is not None:
        channels.append(max_channel(settings))
    if settings.smtp_host is not None:
        channels.append(EmailChannel(settings))
    if not channels:
        log.warning(
            "neither VESTNIK_TELEGRAM_TOKEN nor VESTNIK_SMTP_HOST is set: messages go to the log only"
        )
        channels.append(LogChannel())
    return channels, bots


async def close_channels(channels: list[Channel], bots: list[Bot]) -> None:
    """Close what ``build_channels`` opened: the bots it made and the MAX channel's client."""
    for bot in bots:
        await bot.session.close()
    for channel in channels:
        close = getattr(channel, "close", None)
        if close is not None:
            await close()


def max_channel(settings: Settings) -> Channel:
    """The MAX channel, its lane named by the token's digest (the same bot in every worker)."""
    from worker.max_api import MaxClient
    from worker.max_channel import MaxChannel

    assert settings.max_token is not None
    token = settings.max_token.get_secret_value()
    client = MaxClient(token, str(settings.max_api_url))
    limits = Limits(settings.max_rate_per_second, settings.max_chat_rate_per_second, None)
    return MaxChannel(client, hashlib.sha256(token.encode()).hexdigest()[:12], limits)
