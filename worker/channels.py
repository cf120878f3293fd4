"""Channel implementations: Telegram through aiogram, and a log channel for development."""

from __future__ import annotations

import logging
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

from core.notify.channels import Outcome, OutcomeKind
from core.notify.messages import OutboundMessage
from core.notify.ratelimit import Lane, Limits
from core.teams.models import Member

log = logging.getLogger(__name__)
# Waits for failures Telegram gives no retry_after for (5xx, network): the retry loop backs off.
SERVER_ERROR_WAIT = 5.0
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

    def __init__(self, bot: Bot, limits: Limits | None = None) -> None:
        self.bot = bot
        self.lane = Lane(f"telegram:{bot.id}", limits or Limits())

    def address(self, member: Member) -> str | None:
        return str(member.telegram_user_id) if member.telegram_user_id else None

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
    lane = Lane("log", Limits(None, None, None))
    _ids = count(1)

    def address(self, member: Member) -> str | None:
        return f"{member.name} <{member.id}>"

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        buttons = " ".join(
            [f"[{label}]" for label, _ in message.buttons]
            + [f"[{label} → {url}]" for label, url in message.links]
        )
        log.info("to %s: %s %s", address, message.text, buttons)
        return Outcome(OutcomeKind.sent, provider_message_id=f"log-{next(self._ids)}")
