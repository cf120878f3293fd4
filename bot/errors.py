"""The bot's one handler for core's errors: a reply in the member's language saying what is wrong
(the update's changes were already rolled back by bot.context). Translated by the error's stable
code; a message without a translation yet is shown as core worded it."""

from __future__ import annotations

import logging

from aiogram.types import ErrorEvent

from bot.edits import answer_press
from bot.texts import Texts
from core.errors import DomainError

log = logging.getLogger(__name__)


def describe(exc: DomainError, texts: Texts) -> str:
    key, values = exc.wording()
    return texts(key, **values) if texts.has(key) else exc.detail


async def on_domain_error(event: ErrorEvent, texts: Texts | None = None) -> bool:
    exc = event.exception
    assert isinstance(exc, DomainError)
    text = describe(exc, texts or Texts("en"))
    update = event.update
    if update.callback_query is not None:
        await answer_press(update.callback_query, text, show_alert=True)
    elif update.message is not None:
        await update.message.answer(text)
    else:
        log.info("refused an update with no one to tell: %s", exc.detail)
    return True
