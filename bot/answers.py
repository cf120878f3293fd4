"""Going / Not going / Maybe: the buttons under confirmation requests and nudges."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.edits import answer_press, edit_text, remove_buttons
from core.clock import utcnow
from core.notify.answers import ButtonVerdict, record_button_answer
from core.notify.messages import BUTTONS
from core.teams.accounts import Person

TEXTS = {
    "en": {
        "saved": "Saved",
        "you_answered": "Your answer: {answer}",
        ButtonVerdict.forged: "This button is not valid any more.",
        ButtonVerdict.not_yours: "This message was sent to someone else; your answer was not saved.",
        ButtonVerdict.closed: "Answers for {title} are closed.",
    },
    "ru": {
        "saved": "Сохранено",
        "you_answered": "Ваш ответ: {answer}",
        ButtonVerdict.forged: "Эта кнопка больше не действует.",
        ButtonVerdict.not_yours: "Это сообщение адресовано другому человеку; ответ не сохранён.",
        ButtonVerdict.closed: "Ответы на «{title}» больше не принимаются.",
    },
}


def build_router() -> Router:
    """A fresh router per Dispatcher (aiogram attaches a router to one parent only)."""
    router = Router(name="answers")
    router.callback_query.register(on_answer, F.data.startswith("v1."))
    return router


async def on_answer(
    callback: CallbackQuery, session: AsyncSession, person: Person, signing_key: bytes
) -> None:
    # The update's one session (bot.context): committed once this handler returns.
    result = await record_button_answer(session, signing_key, callback.data or "", person, utcnow())
    texts = TEXTS.get(result.locale, TEXTS["en"])
    if result.verdict is not ButtonVerdict.recorded or result.answer is None:
        await answer_press(
            callback, texts[result.verdict].format(title=result.event_title), show_alert=True
        )
        if result.verdict is ButtonVerdict.closed and isinstance(callback.message, Message):
            await remove_buttons(callback.message)
        return
    await answer_press(callback, texts["saved"])
    if isinstance(callback.message, Message) and callback.message.text:
        label = BUTTONS.get(result.locale, BUTTONS["en"])[result.answer]
        original = callback.message.text.split("\n\n✓ ")[0]
        await edit_text(
            callback.message,
            f"{original}\n\n✓ {texts['you_answered'].format(answer=label)}",
            callback.message.reply_markup,
        )
