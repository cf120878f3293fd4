"""A local MAX Bot API server: the subset vestnik calls, over real HTTP, in MAX's shapes.

Used by the tests and by `vestnik run` without a MAX token. It records what it was sent and is at
least as strict as MAX (platform-api2.max.ru, as its docs describe it) where vestnik could go wrong:

- the token only in the ``Authorization`` header, without "Bearer" (401 ``verify.token``); a token
  in the query string is refused (403 ``deprecated.token``);
- about 30 requests a second per bot and 2 a second per chat for sends, edits and callback
  answers: 429 ``too.many.requests`` with no retry hint (the client decides how long to wait);
  long polling at most about 2 requests a second;
- 403 ``chat.denied`` for a user who stopped or blocked the bot, or never started it;
- 400 ``proto.payload`` for an empty text, a text over 4,000 UTF-16 units (an emoji counts 2),
  a keyboard over 30 rows, 7 buttons a row (3 with a link), 210 buttons, button text outside
  1–128, a callback payload over 1,024 bytes, a link over 2,048; an answer to an unknown or
  answered callback;
- 404 ``not.found`` for an edit of an unknown message; an edit's ``attachments`` replace the
  old ones (``[]`` removes the keyboard);
- webhooks: ``POST /subscriptions`` with ``url`` and ``secret``; each update is POSTed with
  ``X-Max-Bot-Api-Secret``; while a webhook is set, polling gets nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

from emulators import MAX_BOT_USERNAME
from emulators.chat_page import FAVICON, PAGE
from emulators.telegram import TokenBucket, listen

MAX_TEXT = 4000  # UTF-16 code units
MAX_ROWS, MAX_ROW, MAX_ROW_WITH_LINK, MAX_BUTTONS = 30, 7, 3, 210
MAX_BUTTON_TEXT, MAX_PAYLOAD, MAX_URL = 128, 1024, 2048
BOT = {"user_id": 8000000001, "name": "vestnik", "username": MAX_BOT_USERNAME, "is_bot": True}


@dataclass
class MaxMessage:
    mid: str
    user_id: int
    chat_id: int
    text: str
    keyboard: list[list[dict[str, Any]]] | None
    sent_at: float
    edits: list[str] = field(default_factory=list)
    seq: int = 0  # one sequence numbers the bot's and the people's messages (the chat page)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [b for row in self.keyboard or [] for b in row]


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def chat_of(user_id: int) -> int:
    """The dialog between the bot and a user has an id of its own (not the user's)."""
    return 9_000_000_000 + user_id


class MaxApiEmulator:
    """Start with ``await emulator.start()``; point vestnik's MAX client at ``base_url``."""

    def __init__(
        self,
        token: str = "max-test-token",
        *,
        rate_per_second: float = 30.0,
        per_chat_per_second: float = 2.0,
    ) -> None:
        self.token = token
        self.rate_per_second = rate_per_second
        self.per_chat_per_second = per_chat_per_second
        self.messages: list[MaxMessage] = []
        self.started: set[int] = set()
        self.stopped: set[int] = set()
        self.groups: dict[int, str] = {}  # group chats the bot is in: id → title
        self.refusals: list[tuple[str, str]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.requests = 0
        self.rejected_429 = 0
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_statuses: list[int] = []
        self._posts: set[asyncio.Task[None]] = set()
        self._forced_429 = 0
        self._open_callbacks: dict[str, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._seq = 0
        self._global = TokenBucket(
            rate_per_second, rate_per_second, rate_per_second, time.monotonic()
        )
        self._chats: dict[int, TokenBucket] = {}
        self._last_poll = 0.0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- control, for tests ---------------------------------------------------------------------
    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` sends with 429 (MAX gives no retry hint)."""
        self._forced_429 += count

    def sent_to(self, user_id: int) -> list[MaxMessage]:
        return [m for m in self.messages if m.user_id == user_id and m.chat_id not in self.groups]

    def in_chat(self, chat_id: int) -> list[MaxMessage]:
        """What the bot posted in a group chat."""
        return [m for m in self.messages if m.chat_id == chat_id]

    def bot_added(self, user: dict[str, Any], chat: dict[str, Any]) -> None:
        """``user`` adds the bot to the group chat ``chat`` ({"id" (negative), "title"})."""
        self.groups[int(chat["id"])] = str(chat.get("title", ""))
        self._push(
            {
                "update_type": "bot_added",
                "chat_id": int(chat["id"]),
                "user": self._user(user),
                "is_channel": False,
            }
        )

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {"user_id": int(user["user_id"]), "name": str(user.get("name", "")), "is_bot": False}

    def _push(self, update: dict[str, Any]) -> None:
        update = {"timestamp": int(time.time() * 1000), **update}
        if self.webhook_url:
            task = asyncio.get_running_loop().create_task(self._post_webhook(update))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)
            return
        self._updates.append(update)
        self._arrived.set()

    async def _post_webhook(self, update: dict[str, Any]) -> None:
        headers = {"X-Max-Bot-Api-Secret": self.webhook_secret} if self.webhook_secret else {}
        async with (
            ClientSession() as client,
            client.post(self.webhook_url, json=update, headers=headers) as response,
        ):
            self.webhook_statuses.append(response.status)

    def user_starts(
        self, user: dict[str, Any], payload: str | None = None, locale: str = "ru"
    ) -> None:
        """``user`` ({"user_id", "name"}) opens the bot, from a ``?start=<payload>`` link or not."""
        uid = int(user["user_id"])
        self.started.add(uid)
        self.stopped.discard(uid)
        self._seq += 1
        update: dict[str, Any] = {
            "update_type": "bot_started",
            "chat_id": chat_of(uid),
            "user": self._user(user),
            "user_locale": locale,
        }
        if payload is not None:
            update["payload"] = payload
        self._push(update)

    def user_sends(
        self,
        user: dict[str, Any],
        text: str,
        locale: str = "ru",
        chat: dict[str, Any] | None = None,
    ) -> None:
        """``user`` writes to the bot, or in the group chat ``chat`` (the bot is added to it)."""
        uid = int(user["user_id"])
        if chat is None:
            self.started.add(uid)
            recipient = {"chat_id": chat_of(uid), "chat_type": "dialog", "user_id": BOT["user_id"]}
        else:
            self.groups[int(chat["id"])] = str(chat.get("title", ""))
            recipient = {"chat_id": int(chat["id"]), "chat_type": "chat"}
        self._seq += 1
        self._push(
            {
                "update_type": "message_created",
                "message": {
                    "sender": self._user(user),
                    "recipient": recipient,
                    "timestamp": int(time.time() * 1000),
                    "body": {"mid": f"mid.user.{self._seq}", "seq": self._seq, "text": text},
                },
                "user_locale": locale,
            }
        )

    def user_presses(
        self, user: dict[str, Any], message: MaxMessage, payload: str, locale: str = "ru"
    ) -> str:
        """``user`` taps the callback button carrying ``payload`` under ``message``."""
        self._seq += 1
        callback_id = f"cb.{self._seq}"
        self._open_callbacks[callback_id] = message.chat_id
        self._push(
            {
                "update_type": "message_callback",
                "callback": {
                    "timestamp": int(time.time() * 1000),
                    "callback_id": callback_id,
                    "payload": payload,
                    "user": self._user(user),
                },
                "message": self._message_json(message),
                "user_locale": locale,
            }
        )
        return callback_id

    def user_stops(self, user: dict[str, Any]) -> None:
        """``user`` stops (blocks) the bot: a bot_stopped update, and sends are denied."""
        uid = int(user["user_id"])
        self.stopped.add(uid)
        self._push(
            {"update_type": "bot_stopped", "chat_id": chat_of(uid), "user": self._user(user)}
        )

    # -- HTTP -------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/me", self._me)
        app.router.add_post("/messages", self._send)
        app.router.add_put("/messages", self._edit)
        app.router.add_post("/answers", self._answer)
        app.router.add_get("/updates", self._poll)
        app.router.add_post("/subscriptions", self._subscribe)
        app.router.add_delete("/subscriptions", self._unsubscribe)
        app.router.add_get("/emulator/messages", self._list)
        app.router.add_get("/emulator", self._chat_page)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_post("/emulator/send", self._page_send)
        app.router.add_post("/emulator/press", self._page_press)
        self._runner, self.base_url = await listen(app, host, port)
        return self.base_url

    async def stop(self) -> None:
        self._arrived.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _refuse(self, status: int, code: str, message: str, where: str) -> web.Response:
        if status != 429:
            self.refusals.append((where, code))
        return web.json_response({"code": code, "message": message}, status=status)

    def _auth(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        if "access_token" in request.query:
            return self._refuse(
                403, "deprecated.token", "token in the query is not allowed", "auth"
            )
        if request.headers.get("Authorization") != self.token:
            return self._refuse(401, "verify.token", "Invalid access_token", "auth")
        return None

    def _limited(self, chat_id: int | None) -> web.Response | None:
        now = time.monotonic()
        if self._global.take(now) > 0:
            self.rejected_429 += 1
            return self._refuse(429, "too.many.requests", "Too many requests", "rate")
        if chat_id is not None:
            bucket = self._chats.setdefault(
                chat_id,
                TokenBucket(
                    self.per_chat_per_second,
                    self.per_chat_per_second,
                    self.per_chat_per_second,
                    now,
                ),
            )
            if bucket.take(now) > 0:
                self.rejected_429 += 1
                return self._refuse(
                    429, "too.many.requests", "Too many requests to this chat", "rate"
                )
        return None

    async def _me(self, request: web.Request) -> web.Response:
        return self._auth(request) or web.json_response(BOT)

    def _check_body(
        self, body: dict[str, Any], where: str
    ) -> tuple[list[list[dict[str, Any]]] | None, web.Response | None]:
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            return None, self._refuse(400, "proto.payload", "text must be a string", where)
        if text is not None and utf16_len(text) > MAX_TEXT:
            return None, self._refuse(
                400, "proto.payload", "text: size must be at most 4000", where
            )
        keyboard = None
        for attachment in body.get("attachments") or []:
            if attachment.get("type") != "inline_keyboard":
                return None, self._refuse(400, "proto.payload", "unknown attachment", where)
            keyboard = (attachment.get("payload") or {}).get("buttons")
            problem = _keyboard_problem(keyboard)
            if problem:
                return None, self._refuse(400, "proto.payload", problem, where)
        if not (text or "").strip() and keyboard is None and where == "send":
            return None, self._refuse(400, "proto.payload", "text: must not be empty", where)
        return keyboard, None

    async def _send(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        query = request.query
        if "user_id" in query:
            user_id = int(query["user_id"])
            chat_id = chat_of(user_id)
        elif "chat_id" in query:
            chat_id = int(query["chat_id"])
            user_id = 0 if chat_id in self.groups else chat_id - 9_000_000_000
        else:
            return self._refuse(400, "proto.payload", "user_id or chat_id is required", "send")
        if self._forced_429:
            self._forced_429 -= 1
            self.rejected_429 += 1
            return self._refuse(429, "too.many.requests", "Too many requests", "rate")
        limited = self._limited(chat_id)
        if limited:
            return limited
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self._refuse(400, "proto.payload", "body is not JSON", "send")
        keyboard, bad = self._check_body(body, "send")
        if bad:
            return bad
        in_group = chat_id in self.groups
        if not in_group and (user_id in self.stopped or user_id not in self.started):
            return self._refuse(403, "chat.denied", "chat.denied: dialog is not available", "send")
        self._seq += 1
        message = MaxMessage(
            f"mid.{self._seq:016x}",
            user_id,
            chat_id,
            body.get("text") or "",
            keyboard,
            time.monotonic(),
            seq=self._seq,
        )
        self.messages.append(message)
        return web.json_response({"message": self._message_json(message)})

    def _message_json(self, m: MaxMessage) -> dict[str, Any]:
        body: dict[str, Any] = {"mid": m.mid, "seq": 0, "text": m.text}
        if m.keyboard:
            body["attachments"] = [{"type": "inline_keyboard", "payload": {"buttons": m.keyboard}}]
        return {
            "sender": BOT,
            "recipient": (
                {"chat_id": m.chat_id, "chat_type": "chat"}
                if m.chat_id in self.groups
                else {"chat_id": m.chat_id, "chat_type": "dialog", "user_id": m.user_id}
            ),
            "timestamp": int(time.time() * 1000),
            "body": body,
        }

    async def _edit(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        found = next((m for m in self.messages if m.mid == request.query.get("message_id")), None)
        if found is None:
            return self._refuse(404, "not.found", "message not found", "edit")
        limited = self._limited(found.chat_id)
        if limited:
            return limited
        body = await request.json()
        keyboard, bad = self._check_body(body, "edit")
        if bad:
            return bad
        if "text" in body and body["text"] is not None:
            found.edits.append(found.text)
            found.text = body["text"]
        if "attachments" in body:  # replaces: [] removes the keyboard
            found.keyboard = keyboard
        return web.json_response({"success": True})

    async def _answer(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        callback_id = request.query.get("callback_id", "")
        chat_id = self._open_callbacks.pop(callback_id, None)
        if chat_id is None:
            return self._refuse(
                400, "proto.payload", "callback_id is unknown or answered", "answer"
            )
        limited = self._limited(chat_id)
        if limited:
            self._open_callbacks[callback_id] = chat_id
            return limited
        body = await request.json()
        self.callback_answers.append({"callback_id": callback_id, **body})
        if body.get("message"):
            found = next((m for m in reversed(self.messages) if m.chat_id == chat_id), None)
            if found is not None:
                _, bad = self._check_body(body["message"], "answer")
                if bad:
                    return bad
        return web.json_response({"success": True})

    async def _poll(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        now = time.monotonic()
        if now - self._last_poll < 0.45:  # about 2 long-poll requests a second
            self.rejected_429 += 1
            return self._refuse(429, "too.many.requests", "Too many requests", "rate")
        self._last_poll = now
        marker = int(request.query.get("marker") or 0)
        timeout = min(float(request.query.get("timeout") or 30), 90)
        limit = min(int(request.query.get("limit") or 100), 1000)
        if not self.webhook_url and len(self._updates) <= marker:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        batch = [] if self.webhook_url else self._updates[marker : marker + limit]
        return web.json_response({"updates": batch, "marker": marker + len(batch)})

    async def _subscribe(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        body = await request.json()
        url = str(body.get("url", ""))
        if not url.startswith(("http://", "https://")):
            return self._refuse(400, "proto.payload", "url is invalid", "subscribe")
        self.webhook_url, self.webhook_secret = url, str(body.get("secret") or "")
        return web.json_response({"success": True})

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        self.webhook_url = self.webhook_secret = ""
        return web.json_response({"success": True})

    async def _list(self, request: web.Request) -> web.Response:
        """What the bot sent (all, or ``?chat_id=<user id>``), in the chat page's shape."""
        wanted = request.query.get("chat_id")
        return web.json_response(
            [
                {
                    "chat_id": m.user_id,
                    "message_id": m.seq,
                    "mid": m.mid,
                    "text": m.text,
                    "edits": m.edits,
                    "reply_markup": {
                        "inline_keyboard": [
                            [
                                {"text": b["text"], "callback_data": b.get("payload", "")}
                                for b in row
                                if b.get("type") == "callback"
                            ]
                            for row in m.keyboard
                        ]
                    }
                    if m.keyboard
                    else None,
                }
                for m in self.messages
                if wanted is None or str(m.user_id) == wanted
            ]
        )

    # -- the chat page: a person tries the MAX bot without MAX ----------------------------------
    async def _favicon(self, request: web.Request) -> web.Response:
        return web.Response(body=FAVICON, content_type="image/svg+xml")

    async def _chat_page(self, request: web.Request) -> web.Response:
        page = PAGE.replace("Telegram user id", "MAX user id").replace("<title>", "<title>MAX · ")
        return web.Response(text=page, content_type="text/html")

    @staticmethod
    def _page_user(body: dict[str, Any]) -> dict[str, Any] | None:
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or user["id"] <= 0:
            return None
        return {"user_id": user["id"], "name": str(user.get("first_name") or "Someone")[:64]}

    async def _page_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._page_user(body)
        text = str(body.get("text", "")).strip()[:MAX_TEXT]
        if user is None or not text:
            return web.json_response({"error": "user (with a positive id) and text"}, status=400)
        locale = str((body.get("user") or {}).get("language_code") or "ru")[:8]
        if text == "/start" or text.startswith("/start "):  # the deep link, as MAX delivers it
            self.user_starts(user, text.removeprefix("/start").strip() or None, locale)
        else:
            self.user_sends(user, text, locale)
        return web.json_response({"ok": True, "message_id": self._seq})

    async def _page_press(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._page_user(body)
        message = next((m for m in self.messages if m.seq == body.get("message_id")), None)
        if user is None or message is None:
            return web.json_response({"error": "user and an existing message"}, status=400)
        answered = len(self.callback_answers)
        self.user_presses(user, message, str(body.get("data", "")))
        for _ in range(30):
            if len(self.callback_answers) > answered:
                answer = self.callback_answers[-1].get("notification", "")
                return web.json_response({"text": answer})
            await asyncio.sleep(0.1)
        return web.json_response({"text": ""})


def _keyboard_problem(rows: Any) -> str | None:
    if not isinstance(rows, list) or not rows:
        return "inline_keyboard: buttons must be a non-empty list of rows"
    if len(rows) > MAX_ROWS:
        return f"inline_keyboard: at most {MAX_ROWS} rows"
    total = 0
    for row in rows:
        if not isinstance(row, list) or not row:
            return "inline_keyboard: a row must be a non-empty list"
        links = any(
            b.get("type") in ("link", "open_app", "request_contact", "request_geo_location")
            for b in row
        )
        if len(row) > (MAX_ROW_WITH_LINK if links else MAX_ROW):
            return "inline_keyboard: too many buttons in a row"
        total += len(row)
        for button in row:
            text = button.get("text")
            if not isinstance(text, str) or not 1 <= len(text) <= MAX_BUTTON_TEXT:
                return "inline_keyboard: button text must be 1-128 characters"
            kind = button.get("type")
            if kind == "callback":
                payload = button.get("payload")
                if (
                    not isinstance(payload, str)
                    or not payload
                    or len(payload.encode()) > MAX_PAYLOAD
                ):
                    return "inline_keyboard: callback payload must be 1-1024 bytes"
            elif kind == "link":
                url = button.get("url")
                if (
                    not isinstance(url, str)
                    or len(url) > MAX_URL
                    or not url.startswith(("http://", "https://"))
                ):
                    return "inline_keyboard: link url is invalid"
            elif kind not in ("open_app", "request_contact", "request_geo_location", "message"):
                return f"inline_keyboard: unknown button type {kind!r}"
    if total > MAX_BUTTONS:
        return f"inline_keyboard: at most {MAX_BUTTONS} buttons"
    return None


async def serve(host: str, port: int, token: str, stop: asyncio.Event) -> None:
    """Run a MAX emulator until ``stop`` is set (`vestnik max-emulator`)."""
    emulator = MaxApiEmulator(token)
    url = await emulator.start(host, port)
    print(f"MAX Bot API emulator on {url} (chat page: {url}/emulator)", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
