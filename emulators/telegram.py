"""A local Telegram Bot API server: the subset vestnik calls, over real HTTP.

Used by the tests, the benchmarks and `vestnik run` without a bot token. It records what it was
sent and is at least as strict as Telegram where vestnik could go wrong:

- flood control: a bot-wide rate (HTTP 429 with ``retry_after``, drawn from a range so clients
  cannot assume 1 s), and a bot that sends during an announced wait gets 429 again with the wait
  made longer, as Telegram does; a per-chat rate if asked;
- a bot cannot write first: a private chat whose user never sent the bot anything (``/start``)
  gets 403 "bot can't initiate conversation with a user";
- 400s for an empty or over-long text, callback data over 64 bytes (BUTTON_DATA_INVALID), an edit
  of an unknown message ("message to edit not found") or one that changes nothing ("message is
  not modified"), and an answer to an unknown or already answered button press ("query is too
  old");
- and it can be told to fail: 429 for the next calls, 403 for a chat that "blocked the bot".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, web

from emulators import TELEGRAM_BOT_USERNAME
from emulators.chat_page import FAVICON, PAGE

BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "vestnik",
    "username": TELEGRAM_BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class Message:
    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    sent_at: float
    edits: list[str] = field(default_factory=list)


@dataclass
class TokenBucket:
    rate: float
    capacity: float
    tokens: float = 0.0
    updated: float = 0.0

    def take(self, now: float) -> float:
        """0 if a token was taken, else seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


async def listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host``:``port`` (0: any free port); its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://{host}:{bound}"


class BotApiEmulator:
    """Start with ``await emulator.start()``; point aiogram at ``emulator.base_url``."""

    def __init__(
        self,
        *,
        rate_per_second: float | None = 30.0,
        per_chat_per_second: float | None = None,
        retry_after: tuple[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.rate_per_second = rate_per_second
        self.per_chat_per_second = per_chat_per_second
        # The wait announced when the bot-wide rate is exceeded: drawn from this range (seconds),
        # or just long enough for the next token if None.
        self.retry_after = retry_after
        self._random = random.Random(seed)
        self._flood_until = 0.0
        self.sent_during_wait = 0  # send calls made inside a wait this emulator had announced
        self.refusals: list[tuple[str, str]] = []  # (method, description) of every 4xx but 429
        # Private chats whose user has written to the bot: only those may be written to.
        self.started: set[int] = set()
        self._open_queries: set[str] = set()
        self._by_key: dict[tuple[int, int], Message] = {}
        self.messages: list[Message] = []
        self.blocked: set[int] = set()
        self.missing_chats: set[int] = set()
        self.delay = 0.0
        self.requests = 0
        self.rejected_429 = 0
        self.callback_answers: list[dict[str, Any]] = []
        self.menu_button: dict[str, Any] | None = None
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_statuses: list[int] = []
        self._webhook_posts: set[asyncio.Task[None]] = set()
        self._forced: deque[tuple[int, bool]] = deque()
        self._outage = 0
        self.server_errors = 0
        self._updates: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._update_id = 0
        self._next_message_id = 1
        self._global: TokenBucket | None = None
        self._chats: dict[int, TokenBucket] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._reset_buckets()

    # -- control, for tests and benchmarks ---------------------------------------------------
    def fail_next(self, count: int, retry_after: int = 1, *, enforce: bool = False) -> None:
        """Answer the next ``count`` send calls with 429 and this retry_after. Injected failures
        do not hold the bot back unless ``enforce``: then, as Telegram does, sends inside the
        announced wait get 429 again and make it longer (measured in real time)."""
        self._forced.extend([(retry_after, enforce)] * count)

    def outage(self, count: int) -> None:
        """Answer the next ``count`` send calls with 502 Bad Gateway, as Telegram's front end
        does while the Bot API is down (no retry_after: the client decides when to come back)."""
        self._outage += count

    def introduce(self, *chat_ids: int) -> None:
        """These users have opened the bot (pressed Start) before: the bot may write to them."""
        self.started.update(chat_ids)

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to this chat get 403."""
        self.blocked.add(chat_id)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update (a message, a button press) for getUpdates, or post it to the
        webhook if one is set, as Telegram does."""
        self._update_id += 1
        full = {"update_id": self._update_id, **update}
        sender = (update.get("message") or update.get("callback_query") or {}).get("from")
        if sender and not sender.get("is_bot"):
            self.started.add(int(sender["id"]))
        if "callback_query" in update:
            self._open_queries.add(str(update["callback_query"]["id"]))
        if self.webhook_url:
            task = asyncio.get_running_loop().create_task(self._post_webhook(full))
            self._webhook_posts.add(task)
            task.add_done_callback(self._webhook_posts.discard)
            return
        self._updates.append(full)
        self._arrived.set()

    async def _post_webhook(self, update: dict[str, Any]) -> None:
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} if self.webhook_secret else {}
        )
        async with (
            ClientSession() as client,
            client.post(self.webhook_url, json=update, headers=headers) as response,
        ):
            self.webhook_statuses.append(response.status)

    def sent_to(self, chat_id: int) -> list[Message]:
        return [m for m in self.messages if m.chat_id == chat_id]

    # -- acting as a person in Telegram -------------------------------------------------------
    def user_sends(
        self,
        user: dict[str, Any],
        text: str,
        chat: dict[str, Any] | None = None,
    ) -> int:
        """``user`` (id, first_name, language_code…) sends ``text`` to the bot, in a private chat
        unless ``chat`` is given (a group). Returns the message's id: one sequence numbers the
        bot's and the people's messages, so a chat reads in the order things were said."""
        message_id = self._next_message_id
        self._next_message_id += 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat
            or {"id": user["id"], "type": "private", "first_name": user.get("first_name", "")},
            "from": {"is_bot": False, "first_name": "", **user},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self.push_update({"message": message})
        return message_id

    def user_presses(self, user: dict[str, Any], message: Message, data: str) -> None:
        """``user`` taps the inline button carrying ``data`` under ``message``."""
        self.push_update(
            {
                "callback_query": {
                    "id": f"cb{self._update_id + 1}",
                    "from": {"is_bot": False, "first_name": "", **user},
                    "chat_instance": str(message.chat_id),
                    "message": _message_json(message),
                    "data": data,
                }
            }
        )

    def user_blocks(self, user: dict[str, Any], blocked: bool = True) -> None:
        """``user`` blocks (or unblocks) the bot: a my_chat_member update, and sends fail."""
        (self.blocked.add if blocked else self.blocked.discard)(int(user["id"]))
        old, new = ("member", "kicked") if blocked else ("kicked", "member")

        def state(status: str) -> dict[str, Any]:
            return {"status": status, "user": BOT_USER} | (
                {"until_date": 0} if status == "kicked" else {}
            )

        self.push_update(
            {
                "my_chat_member": {
                    "chat": {"id": user["id"], "type": "private"},
                    "from": {"is_bot": False, "first_name": "", **user},
                    "date": int(time.time()),
                    "old_chat_member": state(old),
                    "new_chat_member": state(new),
                }
            }
        )

    def _reset_buckets(self) -> None:
        now = time.monotonic()
        if self.rate_per_second is not None:
            rate = self.rate_per_second
            self._global = TokenBucket(rate, max(1.0, rate), tokens=max(1.0, rate), updated=now)
        self._chats.clear()

    # -- the HTTP side -----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        app.router.add_get("/emulator/messages", self._list_messages)
        app.router.add_get("/emulator", self._chat_page)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_post("/emulator/send", self._page_send)
        app.router.add_post("/emulator/press", self._page_press)
        self._runner, self.base_url = await listen(app, host, port)
        return self.base_url

    async def stop(self) -> None:
        self._arrived.set()  # let long polls answer now instead of holding up the shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.Response:
        self.requests += 1
        params: dict[str, Any] = dict(await request.post()) if request.can_read_body else {}
        params |= dict(request.query)
        if request.content_type == "application/json":
            params |= await request.json()
        method = request.match_info["method"].lower()
        if self.delay:
            await asyncio.sleep(self.delay)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result: web.Response = await handler(params)
        if 400 <= result.status < 500 and result.status != 429 and result.text:
            self.refusals.append((method, json.loads(result.text)["description"]))
        return result

    async def _list_messages(self, request: web.Request) -> web.Response:
        """What the bot has sent so far (all chats, or ``?chat_id=``), with its buttons."""
        wanted = request.query.get("chat_id")
        return web.json_response(
            [
                {
                    "chat_id": m.chat_id,
                    "message_id": m.message_id,
                    "text": m.text,
                    "edits": m.edits,
                    "reply_markup": m.reply_markup,
                }
                for m in self.messages
                if wanted is None or str(m.chat_id) == wanted
            ]
        )

    # -- the chat page: a person tries the bot without Telegram -------------------------------
    async def _favicon(self, request: web.Request) -> web.Response:
        return web.Response(body=FAVICON, content_type="image/svg+xml")

    async def _chat_page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    @staticmethod
    def _page_user(body: dict[str, Any]) -> dict[str, Any] | None:
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or user["id"] <= 0:
            return None
        return {
            "id": user["id"],
            "first_name": str(user.get("first_name") or "Someone")[:64],
            "language_code": str(user.get("language_code") or "en")[:8],
        }

    async def _page_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._page_user(body)
        text = str(body.get("text", "")).strip()[:4096]
        if user is None or not text:
            return web.json_response({"error": "user (with a positive id) and text"}, status=400)
        message_id = self.user_sends(user, text)
        return web.json_response({"ok": True, "message_id": message_id})

    async def _page_press(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._page_user(body)
        message = next(
            (
                m
                for m in self.messages
                if m.chat_id == body.get("chat_id") and m.message_id == body.get("message_id")
            ),
            None,
        )
        if user is None or message is None:
            return web.json_response({"error": "user and an existing message"}, status=400)
        answered = len(self.callback_answers)
        self.user_presses(user, message, str(body.get("data", "")))
        # Show the bot's short answer (a toast in Telegram) if it comes quickly.
        for _ in range(30):
            if len(self.callback_answers) > answered:
                return web.json_response({"text": self.callback_answers[-1]["text"]})
            await asyncio.sleep(0.1)
        return web.json_response({"text": ""})

    def _limited(self, chat_id: int) -> web.Response | None:
        now = time.monotonic()
        if self._outage > 0:
            self._outage -= 1
            self.server_errors += 1
            return _error(502, "Bad Gateway")
        if now < self._flood_until:
            # Sending inside an announced wait: Telegram answers 429 again and waits longer.
            self.sent_during_wait += 1
            self.rejected_429 += 1
            self._flood_until += FLOOD_PENALTY_SECONDS
            return _retry_after(math.ceil(self._flood_until - now))
        if self._forced:
            self.rejected_429 += 1
            seconds, enforce = self._forced.popleft()
            if enforce:
                self._flood_until = now + seconds
            return _retry_after(seconds)
        if self._global is not None and (wait := self._global.take(now)) > 0:
            self.rejected_429 += 1
            seconds = (
                self._random.randint(*self.retry_after)
                if self.retry_after
                else max(1, math.ceil(wait))
            )
            self._flood_until = now + seconds
            return _retry_after(seconds)
        if self.per_chat_per_second is not None:
            bucket = self._chats.setdefault(
                chat_id, TokenBucket(self.per_chat_per_second, 1.0, tokens=1.0, updated=now)
            )
            if (wait := bucket.take(now)) > 0:  # this chat only
                self.rejected_429 += 1
                return _retry_after(max(1, math.ceil(wait)))
        return None

    def _chat_error(self, chat_id: int) -> web.Response | None:
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing_chats:
            return _error(400, "Bad Request: chat not found")
        if chat_id > 0 and chat_id not in self.started:
            return _error(403, "Forbidden: bot can't initiate conversation with a user")
        return None

    def _find(self, params: dict[str, Any]) -> Message | None:
        try:
            key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        except ValueError:
            return None
        return self._by_key.get(key)

    async def _m_getme(self, params: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def _m_sendmessage(self, params: dict[str, Any]) -> web.Response:
        try:
            chat_id = int(params["chat_id"])
            text = str(params["text"])
        except (KeyError, ValueError):
            return _error(400, "Bad Request: chat_id and text are required")
        markup = _markup(params)
        invalid = _check_text(text) or _check_markup(markup)
        if invalid is not None:
            return invalid
        refused = self._chat_error(chat_id) or self._limited(chat_id)
        if refused is not None:
            return refused
        message = Message(
            message_id=self._next_message_id,
            chat_id=chat_id,
            text=text,
            reply_markup=markup,
            sent_at=time.monotonic(),
        )
        self._next_message_id += 1
        self.messages.append(message)
        self._by_key[(chat_id, message.message_id)] = message
        return _ok(_message_json(message))

    async def _m_editmessagetext(self, params: dict[str, Any]) -> web.Response:
        message = self._find(params)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        text, markup = str(params.get("text", "")), _markup(params)
        invalid = _check_text(text) or _check_markup(markup)
        if invalid is not None:
            return invalid
        if text == message.text and markup == message.reply_markup:
            return _error(400, NOT_MODIFIED)
        message.edits.append(message.text)
        message.text = text
        message.reply_markup = markup
        return _ok(_message_json(message))

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> web.Response:
        message = self._find(params)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        markup = _markup(params)
        invalid = _check_markup(markup)
        if invalid is not None:
            return invalid
        if markup == message.reply_markup:
            return _error(400, NOT_MODIFIED)
        message.reply_markup = markup
        return _ok(_message_json(message))

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> web.Response:
        query = str(params.get("callback_query_id", ""))
        if query not in self._open_queries:  # unknown, or answered already
            return _error(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._open_queries.discard(query)
        self.callback_answers.append(
            {
                "id": str(params.get("callback_query_id", "")),
                "text": str(params.get("text", "")),
                "show_alert": str(params.get("show_alert", "")).lower() in ("true", "1"),
            }
        )
        return _ok(True)

    async def _m_setchatmenubutton(self, params: dict[str, Any]) -> web.Response:
        button = params.get("menu_button")
        self.menu_button = json.loads(button) if isinstance(button, str) else button
        return _ok(True)

    async def _m_getupdates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset", 0) or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = min(float(params.get("timeout", 0) or 0), 30.0)
        if not self._updates and timeout > 0:
            # Long polling, as Telegram does: answer as soon as an update arrives.
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        return _ok(list(self._updates))

    async def _m_deletewebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = self.webhook_secret = ""
        return _ok(True)

    async def _m_setwebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = str(params.get("url", ""))
        self.webhook_secret = str(params.get("secret_token", ""))
        return _ok(True)

    async def _m_setmycommands(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)


FLOOD_PENALTY_SECONDS = 1.0
MAX_TEXT = 4096  # characters (UTF-16 units in Telegram; close enough for the texts we send)
MAX_CALLBACK_DATA = 64  # bytes
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    parsed = json.loads(markup) if isinstance(markup, str) else markup
    if not parsed or not parsed.get("inline_keyboard"):
        return None  # an empty keyboard is no keyboard
    return dict(parsed)


def _check_text(text: str) -> web.Response | None:
    if not text.strip():
        return _error(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT:
        return _error(400, "Bad Request: message is too long")
    return None


def _check_markup(markup: dict[str, Any] | None) -> web.Response | None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                return _error(400, "Bad Request: BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not _button_url_ok(str(url)):
                return _error(400, "Bad Request: BUTTON_URL_INVALID")
    return None


def _button_url_ok(url: str) -> bool:
    """Telegram takes http(s) and tg: links to a public host; a local address is refused."""
    parsed = urlsplit(url)
    if parsed.scheme == "tg":
        return True
    host = (parsed.hostname or "").lower()
    local = host in ("localhost", "") or host.startswith("127.") or host == "0.0.0.0"
    return parsed.scheme in ("http", "https") and "." in host and not local


def _message_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "message_id": message.message_id,
        "date": int(time.time()),
        "chat": {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "group"},
        "from": BOT_USER,
        "text": message.text,
    }
    if message.reply_markup:
        data["reply_markup"] = message.reply_markup
    return data


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )


def _retry_after(seconds: int) -> web.Response:
    return web.json_response(
        {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds},
        },
        status=429,
    )


async def serve(host: str, port: int, stop: asyncio.Event) -> None:
    """Run an emulator until ``stop`` is set (`vestnik emulator`)."""
    emulator = BotApiEmulator()
    url = await emulator.start(host, port)
    print(f"Bot API emulator on {url} (sent messages: {url}/emulator/messages)", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
