"""Whatever no other handler took: unknown commands, and free text (code words first)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.texts import Texts
from core.teams.code_words import apply_code_words
from core.teams.models import Member


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(on_unknown_command, F.text.startswith("/"))
    router.message.register(on_free_text, F.chat.type == "private")
    return router


async def on_unknown_command(message: Message, texts: Texts) -> None:
    if message.chat.type == "private":
        await message.answer(texts("unknown_command"))


async def on_free_text(
    message: Message, session: AsyncSession, member: Member | None, texts: Texts
) -> None:
    if member is None:
        await message.answer(texts("not_member"))
        return
    replies = await apply_code_words(session, member, message.text or "") if message.text else None
    if replies is None:
        await message.answer(texts("free_text"))
        return
    for reply in replies:
        await message.answer(reply)
