"""The bot in MAX: the same conversation as in Telegram, through MAX's Bot API.

The conversation is written once: the command, answer and free-text handlers take a message to
``answer()`` and the member it is from, and this adapter hands them a MAX message with that one
method (``MaxReply``), rendering aiogram's keyboards as MAX inline keyboards. What differs is only
how updates arrive (``bot_started`` with the deep-link payload instead of ``/start <token>``,
``message_callback`` instead of a callback query, ``bot_stopped`` instead of a kicked member) and
how a press is answered (``POST /answers``) and a message edited (``PUT /messages``, whose
attachments replace the old ones: the keyboard is sent again to keep it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import fallback, leads, member_commands
from bot.answers import TEXTS as PRESS_TEXTS
from bot.context import speaker
from bot.joining import apply_timezone
from bot.texts import Texts
from core import kinds
from core.clock import utcnow
from core.db import make_engine, make_sessionmaker
from core.delivery.channels import Channel
from core.journeys.triggers import ChoiceVerdict, is_choice, press_choice
from core.notify.answers import ButtonVerdict, record_button_answer
from core.notify.messages import BUTTONS
from core.settings import Settings
from core.teams.accounts import Person
from core.teams.invites import JoinVerdict, redeem_invite
from core.teams.models import Member, Messenger
from core.teams.self_service import blocked_the_bot, came_back, memberships_of
from core.timezones import find_timezones
from worker.channels import build_channels
from worker.max_api import MaxClient, MaxError, keyboard

log = logging.getLogger(__name__)
POLL_PACE = 0.6  # MAX allows about 2 long polls a second; the SDK's loop does not pace itself
JUST_JOINED = timedelta(minutes=30)  # a city sent this soon answers the time-zone question
BUSY_TRIES, BUSY_WAIT = 3, 1.0  # a reply that meets MAX's 2-a-second chat limit waits and goes


async def politely(call: Callable[[], Awaitable[Any]]) -> Any:
    """A bot reply, again after a second when MAX says the chat is busy (429, no hint given)."""
    for attempt in range(BUSY_TRIES):
        try:
            return await call()
        except MaxError as exc:
            if exc.status != 429 or attempt == BUSY_TRIES - 1:
                raise
            await asyncio.sleep(BUSY_WAIT)
    return None


def attachments_of(markup: InlineKeyboardMarkup | None) -> list[dict[str, Any]]:
    """An aiogram keyboard (what the shared handlers build) as MAX attachments."""
    if markup is None:
        return []
    buttons = [
        (b.text, b.callback_data) for row in markup.inline_keyboard for b in row if b.callback_data
    ]
    links = [(b.text, b.url) for row in markup.inline_keyboard for b in row if b.url]
    return keyboard(buttons, links)


@dataclass
class MaxReply:
    """A message from a person in MAX, as the shared handlers see it: its text, and answer()."""

    client: MaxClient
    chat_id: int
    text: str | None = None

    async def answer(
        self, text: str, reply_markup: InlineKeyboardMarkup | None = None, **_: Any
    ) -> None:
        attachments = attachments_of(reply_markup)
        await politely(
            lambda: self.client.send(text, chat_id=self.chat_id, attachments=attachments)
        )


def _person(update: dict[str, Any], user: dict[str, Any]) -> Person:
    return Person(
        Messenger.max, str(user["user_id"]), str(user.get("name", "")), update.get("user_locale")
    )


def _just_joined(member: Member) -> bool:
    account = member.account(Messenger.max)
    created = account.created_at if account is not None else None
    return created is not None and utcnow() - created < JUST_JOINED


def _link_chat(members: Sequence[Member], chat_id: int | None) -> None:
    """MAX writes to a person in a dialog of its own: remember its id on their account."""
    if chat_id is None:
        return
    for member in members:
        account = member.account(Messenger.max)
        if account is not None and account.chat_id != str(chat_id):
            account.chat_id = str(chat_id)


class MaxBot:
    def __init__(
        self,
        client: MaxClient,
        sessions: async_sessionmaker[AsyncSession],
        signing_key: bytes,
        channels: Sequence[Channel],
        base_url: str = "",
    ) -> None:
        self.client, self.sessions, self.key = client, sessions, signing_key
        self.channels = channels
        self.base_url = base_url  # for calendar feed links

    async def handle(self, update: dict[str, Any]) -> None:
        """One update, in one transaction (committed when it is handled)."""
        kind = update.get("update_type")
        async with self.sessions() as session:
            if kind == "bot_started":
                await self._started(session, update)
            elif kind == "message_callback":
                await self._pressed(session, update)
            elif kind == "message_created":
                await self._message(session, update)
            elif kind == "bot_stopped":
                person = _person(update, update["user"])
                members = await memberships_of(session, person)
                await blocked_the_bot(session, members, Messenger.max, utcnow(), self.channels)
            await session.commit()

    async def _started(self, session: AsyncSession, update: dict[str, Any]) -> None:
        person = _person(update, update["user"])
        chat_id = int(update["chat_id"])
        reply = MaxReply(self.client, chat_id)
        members, texts = await speaker(session, person)
        if members:
            await came_back(session, members, Messenger.max)
            _link_chat(members, chat_id)
        token = str(update.get("payload") or "").strip()
        if not token:
            key = "hello_member" if members else "stranger"
            await reply.answer(texts(key, name=members[0].name if members else ""))
            return
        result = await redeem_invite(session, token, person, utcnow())
        if result.verdict not in (JoinVerdict.joined, JoinVerdict.welcome_back):
            if result.verdict is JoinVerdict.account_in_use and result.member and result.workspace:
                text = texts(
                    "account_in_use", name=result.member.name, workspace=result.workspace.name
                )
            else:
                text = texts(result.verdict.value)
            await session.rollback()  # nothing of a refused invite is kept
            await reply.answer(text)
            return
        member = result.member
        assert member is not None and result.workspace is not None
        _link_chat([member], chat_id)
        texts = Texts(member.locale)
        greeting = "joined" if result.verdict is JoinVerdict.joined else "welcome_back"
        await reply.answer(texts(greeting, name=member.name, workspace=result.workspace.name))
        if result.verdict is JoinVerdict.joined:
            keep = [(texts("keep_zone", zone=member.timezone), f"tz:{member.timezone}")]
            await politely(
                lambda: self.client.send(
                    texts("ask_timezone", zone=member.timezone),
                    chat_id=chat_id,
                    attachments=keyboard(keep),
                )
            )

    async def _pressed(self, session: AsyncSession, update: dict[str, Any]) -> None:
        callback = update["callback"]
        person = _person(update, callback["user"])
        data = str(callback.get("payload") or "")
        now = utcnow()
        message = update.get("message") or {}
        if data.startswith("tz:"):  # a zone button: keep the current one, or one of several
            await self._zone_button(session, person, callback, message, data[3:])
            return
        if data == "calendar:new":  # "make a new calendar link" under /calendar's answer
            await self._calendar(session, update, person, callback, rotate=True)
            return
        if is_choice(self.key, data):
            chosen = await press_choice(session, self.key, data, person, now)
            locale, title = chosen.locale, ""
            ok, label = chosen.verdict is ChoiceVerdict.moved, chosen.label
            refusal: object = {
                ChoiceVerdict.forged: ButtonVerdict.forged,
                ChoiceVerdict.not_yours: ButtonVerdict.not_yours,
            }.get(chosen.verdict, ChoiceVerdict.closed)
            keep = False  # a question is answered once: its buttons go
        else:
            result = await record_button_answer(session, self.key, data, person, now)
            locale, title = result.locale, result.event_title
            ok = result.verdict is ButtonVerdict.recorded and result.answer is not None
            label = BUTTONS.get(locale, BUTTONS["en"])[result.answer] if result.answer else ""
            refusal = result.verdict
            keep = True  # an answer may change until the deadline
        mine = PRESS_TEXTS.get(locale, PRESS_TEXTS["en"])
        if not ok:
            note = str(mine[refusal]).format(title=title)  # type: ignore[index]
            await politely(lambda: self.client.answer(callback["callback_id"], note))
            return
        await session.commit()  # saved before the member is told it is
        await politely(lambda: self.client.answer(callback["callback_id"], mine["saved"]))
        body = message.get("body") or {}
        if body.get("mid") and body.get("text") is not None:
            original = str(body["text"]).split("\n\n✓ ")[0]
            attachments = body.get("attachments", []) if keep else []
            try:  # cosmetic: the answer is saved whatever happens to the edit
                marked = f"{original}\n\n✓ {mine['you_answered'].format(answer=label)}"
                await politely(lambda: self.client.edit(body["mid"], marked, attachments))
            except MaxError as exc:
                log.info("could not mark the answer on MAX message %s: %s", body["mid"], exc)

    async def _calendar(
        self,
        session: AsyncSession,
        update: dict[str, Any],
        person: Person,
        callback: dict[str, Any],
        *,
        rotate: bool,
    ) -> None:
        members, texts = await speaker(session, person)
        member = members[0] if members else None
        await politely(lambda: self.client.answer(callback["callback_id"], "…"))
        chat_id = int(((update.get("message") or {}).get("recipient") or {}).get("chat_id"))
        reply = MaxReply(self.client, chat_id)
        await member_commands.calendar_link(
            reply,  # type: ignore[arg-type]
            session,
            member,
            texts,
            self.base_url,
            rotate=rotate,
        )

    async def _zone_button(
        self,
        session: AsyncSession,
        person: Person,
        callback: dict[str, Any],
        message: dict[str, Any],
        zone: str,
    ) -> None:
        members, texts = await speaker(session, person)
        if not members or zone not in find_timezones(zone):
            note = texts("not_member" if not members else "choose_button")
            await politely(lambda: self.client.answer(callback["callback_id"], note))
            return
        done = await apply_timezone(session, person, zone, texts, utcnow())
        await session.commit()
        await politely(lambda: self.client.answer(callback["callback_id"], done))
        body = message.get("body") or {}
        if body.get("mid"):
            await politely(lambda: self.client.edit(body["mid"], done, []))

    async def _message(self, session: AsyncSession, update: dict[str, Any]) -> None:
        message = update["message"]
        sender = message.get("sender") or {}
        if sender.get("is_bot"):
            return
        person = _person(update, sender)
        chat_id = int((message.get("recipient") or {}).get("chat_id"))
        text = str((message.get("body") or {}).get("text") or "")
        members, texts = await speaker(session, person)
        _link_chat(members, chat_id)
        member = members[0] if members else None
        reply = MaxReply(self.client, chat_id, text)
        command = text.split()[0].lower() if text.startswith("/") else ""
        if command == "/help":
            await member_commands.on_help(reply, session, member, texts)  # type: ignore[arg-type]
        elif command == "/events":
            await member_commands.on_events(reply, session, member, texts)  # type: ignore[arg-type]
        elif command == "/who":  # leads: who is coming to the next event matching the words
            args = SimpleNamespace(args=text.partition(" ")[2])
            await leads.on_who(reply, args, session, member, texts)  # type: ignore[arg-type]
        elif command == "/next":
            await member_commands.on_next(reply, session, member, texts)  # type: ignore[arg-type]
        elif command == "/calendar":
            await member_commands.calendar_link(
                reply,  # type: ignore[arg-type]
                session,
                member,
                texts,
                self.base_url,
                rotate=False,
            )
        elif command in ("/stop", "/unsubscribe"):
            await member_commands.on_unsubscribe(reply, session, members, texts)  # type: ignore[arg-type]
        elif command in ("/resubscribe",):
            await member_commands.on_resubscribe(reply, session, members, texts)  # type: ignore[arg-type]
        elif command:
            await reply.answer(texts("unknown_command"))
        elif member is not None and _just_joined(member) and (zones := find_timezones(text)):
            # The answer to the time-zone question asked on joining (MAX keeps no conversation
            # state for us: a city sent in the first half hour is taken as the answer).
            if len(zones) == 1:
                await reply.answer(await apply_timezone(session, person, zones[0], texts, utcnow()))
            else:
                buttons = [(z, f"tz:{z}") for z in zones[:7]]
                await politely(
                    lambda: self.client.send(
                        texts("timezone_pick", text=text[:60]),
                        chat_id=chat_id,
                        attachments=keyboard(buttons),
                    )
                )
        else:
            await fallback.on_free_text(reply, session, member, texts, self.key)  # type: ignore[arg-type]


async def run_max_bot(
    client: MaxClient,
    bot: MaxBot,
    stop: asyncio.Event,
) -> None:
    """Long-poll MAX for updates until ``stop`` (development and small teams; production may
    use a webhook). Each update is handled in its own transaction; a failure is logged and the
    loop goes on."""
    marker: int | None = None
    while not stop.is_set():
        started = asyncio.get_running_loop().time()
        try:
            updates, marker = await client.updates(marker, seconds=5)
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


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_max_process(
    settings: Settings,
    redis_url: str,
    database_url: str,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """`vestnik bot` for MAX: long-polls MAX (or the emulator) until ``stop`` is set."""
    assert settings.max_token is not None
    kinds.install()
    engine = make_engine(database_url, pool_size=5)
    client = MaxClient(settings.max_token.get_secret_value(), str(settings.max_api_url))
    channels, bots = build_channels(settings)
    bot = MaxBot(
        client, make_sessionmaker(engine), settings.signing_key, channels, settings.public_url
    )
    ready()
    try:
        await run_max_bot(client, bot, stop)
    finally:
        for telegram_bot in bots:
            await telegram_bot.session.close()
        for channel in channels:
            close = getattr(channel, "close", None)
            if close is not None:
                await close()
        await client.close()
        await engine.dispose()
