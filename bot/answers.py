"""Going / Not going / Maybe: the buttons under confirmation requests and nudges."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.edits import answer_press, edit_text, remove_buttons
from core.clock import utcnow
from core.journeys.triggers import ChoiceVerdict, is_choice, press_choice
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
        ChoiceVerdict.closed: "This question is closed.",
    },
    "ru": {
        "saved": "Сохранено",
        "you_answered": "Ваш ответ: {answer}",
        ButtonVerdict.forged: "Эта кнопка больше не действует.",
        ButtonVerdict.not_yours: "Это сообщение адресовано другому человеку; ответ не сохранён.",
        ButtonVerdict.closed: "Ответы на «{title}» больше не принимаются.",
        ChoiceVerdict.closed: "Этот вопрос уже закрыт.",
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
    # The update's one session (bot.context); committed here before the member is told "Saved",
    # so what they are told is what is kept.
    if is_choice(signing_key, callback.data or ""):
        await on_choice(callback, session, person, signing_key)
        return
    result = await record_button_answer(session, signing_key, callback.data or "", person, utcnow())
    texts = TEXTS.get(result.locale, TEXTS["en"])
    if result.verdict is not ButtonVerdict.recorded or result.answer is None:
        await answer_press(
            callback, texts[result.verdict].format(title=result.event_title), show_alert=True
        )
        if result.verdict is ButtonVerdict.closed and isinstance(callback.message, Message):
            await remove_buttons(callback.message)
        return
    await session.commit()
    await answer_press(callback, texts["saved"])
    if isinstance(callback.message, Message) and callback.message.text:
        label = BUTTONS.get(result.locale, BUTTONS["en"])[result.answer]
        original = callback.message.text.split("\n\n✓ ")[0]
        await edit_text(
            callback.message,
            f"{original}\n\n✓ {texts['you_answered'].format(answer=label)}",
            callback.message.reply_markup,
        )


async def on_choice(
    callback: CallbackQuery, session: AsyncSession, person: Person, signing_key: bytes
) -> None:
    """A button under a journey's question: the run goes the way the button says."""
    result = await press_choice(session, signing_key, callback.data or "", person, utcnow())
    texts = TEXTS.get(result.locale, TEXTS["en"])
    if result.verdict is not ChoiceVerdict.moved:
        key = {
            ChoiceVerdict.forged: ButtonVerdict.forged,
            ChoiceVerdict.not_yours: ButtonVerdict.not_yours,
        }.get(result.verdict, ChoiceVerdict.closed)
        await answer_press(callback, texts[key], show_alert=True)
        if result.verdict is ChoiceVerdict.closed and isinstance(callback.message, Message):
            await remove_buttons(callback.message)
        return
    await session.commit()
    await answer_press(callback, texts["saved"])
    if isinstance(callback.message, Message) and callback.message.text:
        # The question is answered: its buttons go, the answer shows under it.
        await edit_text(
            callback.message,
            f"{callback.message.text}\n\n✓ {texts['you_answered'].format(answer=result.label)}",
            None,
        )
