"""The MAX side of the bot's messenger port: MAX updates in, as the Bot API's shapes, and the Bot
API calls the shared handlers make, carried out through MAX's Bot API.

The conversation is written once, as aiogram routers (bot/app.build_dispatcher). Telegram feeds
them directly; MAX feeds them through this module:

- ``telegram_updates`` turns one MAX update into the update the same person's action would be in
  Telegram: ``bot_started`` (with the deep-link payload) is ``/start <payload>``,
  ``message_created`` a message (in a dialog: a private chat; in a chat: a group),
  ``message_callback`` a callback query on the message it was pressed under, ``bot_stopped`` the
  bot blocked, ``bot_added`` the bot added to a group.
- ``MaxSession`` is an aiogram session that speaks MAX: ``sendMessage`` → ``POST /messages``,
  ``editMessageText`` / ``editMessageReplyMarkup`` → ``PUT /messages`` (whose attachments replace
  the old ones, so the keyboard is sent again to keep it, and omitted to remove it, as Telegram
  does), ``answerCallbackQuery`` → ``POST /answers``. MAX's errors become the Bot API's error
  types, so ``bot.edits`` and the handlers treat them alike. Each call first takes a slot in the
  shared Redis limiter's MAX lane (about 30 a second for the bot, 2 a second per chat, counted
  with the worker's sends), and a 429 (MAX gives no hint) is waited out and tried again.

MAX names messages by string ids (``mid``); the Bot API by numbers. ``MessageIds`` numbers the
mids it sees; a handler only edits the message its update came with, or one it just sent, so a
bounded map of recent ones is enough (and a restart loses nothing: the next update brings its mid
again).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

import httpx
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMyCommands,
    DeleteWebhook,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    SetChatMenuButton,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardMarkup, Message, User

from core.delivery.ratelimit import Lane, RateLimiter
from worker.max_api import MaxClient, MaxError

log = logging.getLogger(__name__)
BUSY_TRIES, BUSY_WAIT = 3, 1.0  # a reply that meets MAX's 429 (no hint) waits a second, again
REMEMBERED = 50_000  # message ids (and open presses) kept for the replies that may follow
# Calls the Bot API has and MAX has no counterpart for; they change nothing a member relies on.
NOTHING_TO_DO = (SetMyCommands, DeleteMyCommands, SetChatMenuButton, DeleteWebhook)


def bot_id_of(token: str) -> int:
    """A stable number for the MAX bot (aiogram names a bot by one: conversation state is kept
    per bot, chat and user), from its token's digest, so every process agrees on it."""
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:5], "big")


def attachments_of(markup: object) -> list[dict[str, Any]]:
    """An aiogram inline keyboard as MAX attachments, row by row ([] for none)."""
    if not isinstance(markup, InlineKeyboardMarkup):
        return []
    rows: list[list[dict[str, Any]]] = []
    for row in markup.inline_keyboard:
        buttons: list[dict[str, Any]] = []
        for button in row:
            if button.callback_data is not None:
                buttons.append(
                    {"type": "callback", "text": button.text, "payload": button.callback_data}
                )
            elif button.url is not None:
                buttons.append({"type": "link", "text": button.text, "url": button.url})
            elif button.web_app is not None:  # the Mini App: opened by its address
                buttons.append({"type": "link", "text": button.text, "url": button.web_app.url})
        if buttons:
            rows.append(buttons)
    return [{"type": "inline_keyboard", "payload": {"buttons": rows}}] if rows else []


def _keyboard_of(attachments: object) -> dict[str, Any] | None:
    """MAX attachments as the Bot API's ``reply_markup`` (callback and link buttons)."""
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict) or attachment.get("type") != "inline_keyboard":
            continue
        rows = []
        for row in (attachment.get("payload") or {}).get("buttons") or []:
            buttons = []
            for b in row:
                if b.get("type") == "callback":
                    buttons.append({"text": b["text"], "callback_data": str(b.get("payload"))})
                elif b.get("type") == "link":
                    buttons.append({"text": b["text"], "url": b["url"]})
            if buttons:
                rows.append(buttons)
        return {"inline_keyboard": rows} if rows else None
    return None


class MessageIds:
    """MAX message ids (strings) as numbers, both ways, for the most recent ``REMEMBERED``; and the
    chat each open press was made in (MAX's limit on answers is per chat)."""

    def __init__(self) -> None:
        self._numbers: OrderedDict[str, int] = OrderedDict()
        self._mids: dict[int, str] = {}
        self._next = itertools.count(1)
        self.press_chats: OrderedDict[str, int] = OrderedDict()

    def number(self, mid: str) -> int:
        found = self._numbers.get(mid)
        if found is None:
            found = next(self._next)
            self._numbers[mid], self._mids[found] = found, mid
            if len(self._numbers) > REMEMBERED:
                _, old = self._numbers.popitem(last=False)
                self._mids.pop(old, None)
        return found

    def mid(self, number: int) -> str | None:
        return self._mids.get(number)

    def pressed_in(self, callback_id: str, chat_id: int) -> None:
        self.press_chats[callback_id] = chat_id
        if len(self.press_chats) > REMEMBERED:
            self.press_chats.popitem(last=False)


def _user(raw: dict[str, Any], locale: object = None) -> dict[str, Any]:
    name = str(raw.get("first_name") or raw.get("name") or "").strip()
    user: dict[str, Any] = {
        "id": int(raw["user_id"]),
        "is_bot": bool(raw.get("is_bot", False)),
        "first_name": name or str(raw["user_id"]),
    }
    if raw.get("last_name"):
        user["last_name"] = str(raw["last_name"])
    if raw.get("username"):
        user["username"] = str(raw["username"])
    if isinstance(locale, str) and locale:
        user["language_code"] = locale
    return user


def _chat(chat_id: int, chat_type: object, title: object = None) -> dict[str, Any]:
    if chat_type == "dialog":
        return {"id": chat_id, "type": "private"}
    return {"id": chat_id, "type": "group", "title": str(title or "")}


def _message(raw: dict[str, Any], ids: MessageIds, locale: object = None) -> dict[str, Any]:
    body = raw.get("body") or {}
    recipient = raw.get("recipient") or {}
    message: dict[str, Any] = {
        "message_id": ids.number(str(body.get("mid") or "")),
        "date": int(raw.get("timestamp") or 0) // 1000,
        "chat": _chat(int(recipient["chat_id"]), recipient.get("chat_type"), raw.get("title")),
    }
    if raw.get("sender"):
        message["from"] = _user(raw["sender"], locale)
    if body.get("text") is not None:
        message["text"] = str(body["text"])
    keyboard = _keyboard_of(body.get("attachments"))
    if keyboard is not None:
        message["reply_markup"] = keyboard
    return message


def telegram_updates(raw: dict[str, Any], ids: MessageIds, bot: Bot) -> list[dict[str, Any]]:
    """One MAX update as the Bot API update(s) of the same action; [] for what the bot ignores."""
    kind = raw.get("update_type")
    date = int(raw.get("timestamp") or 0) // 1000
    locale = raw.get("user_locale")
    if kind == "bot_started":
        payload = str(raw.get("payload") or "").strip()
        message = {
            "message_id": 0,
            "date": date,
            "chat": _chat(int(raw["chat_id"]), "dialog"),
            "from": _user(raw["user"], locale),
            "text": f"/start {payload}" if payload else "/start",
        }
        return [{"message": message}]
    if kind == "message_created":
        created: dict[str, Any] = raw.get("message") or {}
        if (created.get("sender") or {}).get("is_bot"):
            return []
        return [{"message": _message(created, ids, locale)}]
    if kind == "message_callback":
        callback = raw["callback"]
        query: dict[str, Any] = {
            "id": str(callback["callback_id"]),
            "from": _user(callback["user"], locale),
            "chat_instance": "max",
            "data": str(callback.get("payload") or ""),
        }
        if raw.get("message"):
            query["message"] = _message(raw["message"], ids)
            ids.pressed_in(query["id"], int(query["message"]["chat"]["id"]))
        return [{"callback_query": query}]
    if kind in ("bot_stopped", "bot_added", "bot_removed"):
        me = {"id": bot.id, "is_bot": True, "first_name": "vestnik"}
        before, after = {
            "bot_stopped": ("member", "kicked"),
            "bot_added": ("left", "member"),
            "bot_removed": ("member", "left"),
        }[kind]
        chat_type = "dialog" if kind == "bot_stopped" else "chat"
        changed = {
            "chat": _chat(int(raw["chat_id"]), chat_type, raw.get("title")),
            "from": _user(raw["user"], locale),
            "date": date,
            "old_chat_member": {"status": before, "user": me},
            "new_chat_member": {"status": after, "user": me}
            | ({"until_date": 0} if after == "kicked" else {}),
        }
        return [{"my_chat_member": changed}]
    return []


def _as_telegram(method: TelegramMethod[Any], exc: MaxError) -> TelegramAPIError:
    """MAX's error as the Bot API's, so the shared handlers' checks read it the same way."""
    text = f"{exc.code}: {exc.message}"
    if exc.status == 429:
        return TelegramRetryAfter(method, text, int(BUSY_WAIT))
    if exc.status == 401:
        return TelegramUnauthorizedError(method, text)
    if exc.status == 403:
        return TelegramForbiddenError(method, f"Forbidden: bot was blocked by the user ({text})")
    if exc.status == 404:
        edit = isinstance(method, EditMessageText | EditMessageReplyMarkup)
        what = "message to edit not found" if edit else "chat not found"
        return TelegramBadRequest(method, f"Bad Request: {what} ({text})")
    if exc.status >= 500:
        return TelegramServerError(method, text)
    return TelegramBadRequest(method, f"Bad Request: {text}")


class MaxSession(BaseSession):
    """An aiogram session over MAX's Bot API (see the module's description)."""

    def __init__(
        self,
        client: MaxClient,
        ids: MessageIds,
        limiter: RateLimiter | None = None,
        lane: Lane | None = None,
    ) -> None:
        super().__init__()
        self.client, self.ids = client, ids
        self.limiter, self.lane = limiter, lane

    async def close(self) -> None:
        """The MaxClient belongs to whoever made it (it may serve the channel too)."""

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 (aiogram's signature)
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """vestnik downloads no files from messengers."""
        raise NotImplementedError("MAX files are not downloaded by vestnik")
        yield b""  # pragma: no cover (makes this an async generator, as the base's)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        try:
            return cast(TelegramType, await self._carry(bot, method))
        except MaxError as exc:
            raise _as_telegram(method, exc) from exc
        except httpx.HTTPError as exc:
            raise TelegramNetworkError(method, f"{type(exc).__name__}: {exc}") from exc

    async def _carry(self, bot: Bot, method: TelegramMethod[Any]) -> object:
        if isinstance(method, SendMessage):
            chat_id = int(method.chat_id)
            attachments = attachments_of(method.reply_markup)
            sent = await self._politely(
                chat_id,
                lambda: self.client.send(method.text, chat_id=chat_id, attachments=attachments),
            )
            return Message.model_validate(_message(sent, self.ids), context={"bot": bot})
        if isinstance(method, EditMessageText | EditMessageReplyMarkup):
            mid = self.ids.mid(int(method.message_id or 0))
            if mid is None:
                raise MaxError(404, "not.found", "message to edit not found")
            text = method.text if isinstance(method, EditMessageText) else None
            attachments = attachments_of(method.reply_markup)
            chat_id = int(method.chat_id or 0)
            await self._politely(chat_id, lambda: self.client.edit(mid, text, attachments))
            return True
        if isinstance(method, AnswerCallbackQuery):
            if not method.text:  # MAX needs a notification or a message; nothing to say
                return True
            chat_id = self.ids.press_chats.pop(method.callback_query_id, 0)
            text = method.text
            await self._politely(
                chat_id, lambda: self.client.answer(method.callback_query_id, text)
            )
            return True
        if isinstance(method, GetMe):
            me = await self.client.me()
            return User(
                id=bot.id,
                is_bot=True,
                first_name=str(me.get("name") or "vestnik"),
                username=me.get("username"),
            )
        if isinstance(method, NOTHING_TO_DO):
            return True
        raise MaxError(400, "not.supported", f"{type(method).__name__} has no MAX counterpart")

    async def _politely(self, chat_id: int, call: Callable[[], Awaitable[Any]]) -> Any:
        """One call within the shared limits; a 429 waits a second and goes again (MAX names
        no wait), and pauses the lane for everyone who sends through it."""
        for attempt in range(BUSY_TRIES):
            if self.limiter is not None and self.lane is not None:
                await self.limiter.acquire(self.lane, str(chat_id))
            try:
                return await call()
            except MaxError as exc:
                if exc.status != 429 or attempt == BUSY_TRIES - 1:
                    raise
                if self.limiter is not None and self.lane is not None:
                    await self.limiter.flood(self.lane, BUSY_WAIT)
                else:
                    await asyncio.sleep(BUSY_WAIT)
        return None
