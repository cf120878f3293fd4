"""Who is writing: their memberships, their language, and one database session per update."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import Chat, TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.max_adapter import MaxSession
from bot.texts import Texts, locale_of
from core.teams.accounts import Person, link_dialog
from core.teams.models import Member, Messenger
from core.teams.self_service import memberships_of

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def messenger_of(bot: Bot) -> Messenger:
    """The messenger an update came from: MAX's are carried by the MAX session."""
    return Messenger.max if isinstance(bot.session, MaxSession) else Messenger.telegram


def person_of(user: User, messenger: Messenger = Messenger.telegram) -> Person:
    """The neutral person core's use cases take, from the messenger's sender."""
    return Person(messenger, str(user.id), user.full_name, user.language_code)


async def speaker(session: AsyncSession, person: Person | None) -> tuple[list[Member], Texts]:
    """Whoever writes, on any messenger: every membership of their account (newest first) and
    the words to answer in (theirs, else their messenger's language, else English)."""
    members = await memberships_of(session, person) if person else []
    language = person.language if person else None
    locale = locale_of(members[0].locale if members else None, language)
    return members, Texts(locale, person.messenger if person else Messenger.telegram)


class Finished:
    """Updates this process has finished handling (committed or rolled back). A reply is sent
    before its update's transaction ends, so whoever sent an update (a test, a health check) waits
    for this count, not for the reply, to know the update's changes are in the database."""

    count = 0


class PersonMiddleware(BaseMiddleware):
    """Puts ``session``, ``messenger`` (the one the update came from), ``person`` (who is
    writing), ``members`` (every membership of their account there, newest first), ``member``
    (the newest, or None) and ``texts`` into the handler's data. The session commits when the
    handler returns and rolls back if it raises, so a failed update changes nothing."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        messenger = messenger_of(data["bot"])
        try:
            return await self._handle(handler, event, data, user, chat, messenger)
        finally:
            Finished.count += 1

    async def _handle(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
        user: User | None,
        chat: Chat | None,
        messenger: Messenger,
    ) -> Any:
        async with self.sessions() as session:
            person = person_of(user, messenger) if user else None
            members, texts = await speaker(session, person)
            data["session"] = session
            data["messenger"] = messenger
            data["person"] = person
            data["members"] = members
            data["member"] = members[0] if members else None
            data["texts"] = texts
            result = await handler(event, data)
            if person is not None and chat is not None and chat.type == "private":
                # Where the bot writes to them from now on (also for an account just made).
                await link_dialog(session, person, str(chat.id))
            await session.commit()
            return result
