"""Whatever no other handler took: unknown commands, and free text: code words first, then an
answer in words to an open journey question or confirmation request (read by meaning; when
unclear, the bot asks again with the buttons), else a hint."""

from __future__ import annotations

import uuid

from aiogram import F, Router
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.texts import Texts
from core.clock import utcnow
from core.delivery.answer_buttons import encode_answer
from core.events.models import Answer
from core.journeys.subject import choice_answer
from core.journeys.triggers import choose_in_words
from core.notify.messages import BUTTONS
from core.notify.replies import answer_in_words
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


def _keyboard(
    key: bytes, delivery_id: uuid.UUID, buttons: list[tuple[str, str]]
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=label, callback_data=encode_answer(key, delivery_id, answer)
                )
                for label, answer in buttons
            ]
        ]
    )


async def on_free_text(
    message: Message,
    session: AsyncSession,
    member: Member | None,
    texts: Texts,
    signing_key: bytes,
) -> None:
    if member is None:
        await message.answer(texts("not_member"))
        return
    text = message.text or ""
    replies = await apply_code_words(session, member, text) if text else None
    if replies is not None:
        for reply in replies:
            await message.answer(reply)
        return
    if text and await _answered(message, session, member, texts, signing_key, text):
        return
    await message.answer(texts("free_text"))


async def _answered(
    message: Message,
    session: AsyncSession,
    member: Member,
    texts: Texts,
    key: bytes,
    text: str,
) -> bool:
    """An answer in words: to a journey's question, else to a confirmation request."""
    now = utcnow()
    chose = await choose_in_words(session, member, text, now)
    if chose is not None:
        if chose.label is not None:
            await message.answer(texts("words_chosen", label=chose.label))
        elif chose.delivery_id is not None:
            buttons = [(label, choice_answer(i)) for i, label in enumerate(chose.labels)]
            markup = _keyboard(key, chose.delivery_id, buttons)
            await message.answer(texts("words_unclear"), reply_markup=markup)
        return True
    said = await answer_in_words(session, member, text, now)
    if said is None:
        return False
    labels = BUTTONS.get(texts.locale, BUTTONS["en"])
    if said.answer is not None:
        await message.answer(
            texts("words_recorded", answer=labels[said.answer], title=said.event_title)
        )
    else:
        buttons = [(labels[a], a.value) for a in (Answer.going, Answer.not_going, Answer.maybe)]
        await message.answer(
            texts("words_unclear"), reply_markup=_keyboard(key, said.delivery_id, buttons)
        )
    return True
