"""Who is writing: their memberships, their language, and one database session per update."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.texts import Texts, locale_of
from core.teams.accounts import Person
from core.teams.models import Member
from core.teams.self_service import memberships_of

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def person_of(user: User) -> Person:
    """The neutral person core's use cases take, from Telegram's sender."""
    return Person.on_telegram(user.id, user.full_name, user.language_code)


async def speaker(session: AsyncSession, person: Person | None) -> tuple[list[Member], Texts]:
    """Whoever writes, on any messenger: every membership of their account (newest first) and
    the words to answer in (theirs, else their messenger's language, else English)."""
    members = await memberships_of(session, person) if person else []
    language = person.language if person else None
    return members, Texts(locale_of(members[0].locale if members else None, language))


class PersonMiddleware(BaseMiddleware):
    """Puts ``session``, ``person`` (who is writing), ``members`` (every membership of this Telegram account, newest first),
    ``member`` (the newest, or None) and ``texts`` into the handler's data. The session commits
    when the handler returns and rolls back if it raises, so a failed update changes nothing."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        async with self.sessions() as session:
            person = person_of(user) if user else None
            members, texts = await speaker(session, person)
            data["session"] = session
            data["person"] = person
            data["members"] = members
            data["member"] = members[0] if members else None
            data["texts"] = texts
            result = await handler(event, data)
            await session.commit()
            return result
