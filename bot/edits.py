"""Editing and answering what Telegram may refuse for harmless reasons.

Telegram answers 400 "message is not modified" to an edit that changes nothing (the same answer
pressed twice), "message to edit not found" once a message is deleted, and "query is too old"
to a button press answered late. None of these mean the member's answer was lost: it is saved
before any of these calls. So an edit that would change nothing is not made, and those three
answers are logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

log = logging.getLogger(__name__)

_HARMLESS = ("message is not modified", "message to edit not found", "query is too old")


async def _quietly(call: Awaitable[object], what: str) -> None:
    try:
        await call
    except TelegramBadRequest as exc:
        if not any(words in exc.message.lower() for words in _HARMLESS):
            raise
        log.info("%s: %s", what, exc.message)


async def edit_text(message: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Show ``text`` (and ``markup``) in place of the message, unless it already does."""
    if message.text == text and message.reply_markup == markup:
        return
    edit = message.edit_text(text, reply_markup=markup)
    await _quietly(edit, f"edit of message {message.message_id} skipped")


async def remove_buttons(message: Message) -> None:
    if message.reply_markup is not None:
        edit = message.edit_reply_markup(reply_markup=None)
        await _quietly(edit, f"buttons of message {message.message_id} left")


async def answer_press(callback: CallbackQuery, text: str, *, show_alert: bool = False) -> None:
    """The small notice after a button press; a late one is dropped (the press was handled)."""
    await _quietly(callback.answer(text, show_alert=show_alert), f"press {callback.id} unanswered")
