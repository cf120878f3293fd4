"""/settings: time zone, quiet hours, language, preferred time of day, this messenger on or off."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.edits import edit_text
from bot.joining import Setup
from bot.texts import Texts
from core.clock import utcnow
from core.delivery.reachability import channel_muted, set_channel_muted
from core.teams.models import Member, Messenger, TimeOfDay
from core.teams.self_service import (
    parse_quiet_hours,
    set_locale,
    set_preferred_time,
    set_quiet_hours,
)

LANGUAGES = {"en": "English", "ru": "Русский"}


class SettingsFlow(StatesGroup):
    quiet_hours = State()
    choosing = State()  # waiting for a tap on one of the buttons just shown


def build_router() -> Router:
    router = Router(name="settings")
    router.message.register(on_settings, Command("settings"))
    router.callback_query.register(on_menu, F.data.startswith("set:"))
    router.callback_query.register(on_language, F.data.startswith("lang:"))
    router.callback_query.register(on_time_of_day, F.data.startswith("tod:"))
    typed = F.text & ~F.text.startswith("/")
    router.message.register(on_quiet_text, StateFilter(SettingsFlow.quiet_hours), typed)
    router.message.register(on_free_text, StateFilter(SettingsFlow.choosing), typed)
    return router


def _quiet(member: Member, texts: Texts) -> str:
    if member.quiet_start is None or member.quiet_end is None:
        return texts("quiet_none")
    return f"{member.quiet_start:%H:%M}-{member.quiet_end:%H:%M}"


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


async def on_settings(
    message: Message,
    session: AsyncSession,
    member: Member | None,
    texts: Texts,
    messenger: Messenger,
) -> None:
    if member is None:
        await message.answer(texts("not_member"))
        return
    muted = await channel_muted(session, member, messenger.value)
    summary = texts(
        "settings",
        zone=member.timezone,
        quiet=_quiet(member, texts),
        language=LANGUAGES.get(member.locale, member.locale),
        time_of_day=texts(member.preferred_time),
        on_off=texts("off" if muted else "on"),
    )
    keyboard = [
        [_button(texts("btn_timezone"), "set:tz"), _button(texts("btn_quiet"), "set:quiet")],
        [_button(texts("btn_language"), "set:lang"), _button(texts("btn_time_of_day"), "set:tod")],
        [_button(texts("btn_messenger_on" if muted else "btn_messenger_off"), "set:tg")],
    ]
    await message.answer(summary, reply_markup=InlineKeyboardMarkup(inline_keyboard=keyboard))


async def on_menu(
    callback: CallbackQuery,
    session: AsyncSession,
    members: list[Member],
    texts: Texts,
    state: FSMContext,
    messenger: Messenger,
) -> None:
    await callback.answer()
    message = callback.message
    if not members or not isinstance(message, Message):
        if isinstance(message, Message):
            await message.answer(texts("not_member"))
        return
    choice = (callback.data or "")[4:]
    if choice == "tz":
        await state.set_state(Setup.timezone)
        await message.answer(texts("ask_timezone", zone=members[0].timezone))
    elif choice == "quiet":
        await state.set_state(SettingsFlow.quiet_hours)
        await message.answer(texts("ask_quiet"))
    elif choice == "lang":
        await state.set_state(SettingsFlow.choosing)
        buttons = [_button(label, f"lang:{code}") for code, label in LANGUAGES.items()]
        await message.answer(texts("btn_language"), reply_markup=_row(buttons))
    elif choice == "tod":
        await state.set_state(SettingsFlow.choosing)
        buttons = [_button(texts(t.value), f"tod:{t.value}") for t in TimeOfDay]
        await message.answer(texts("btn_time_of_day"), reply_markup=_row(buttons))
    elif choice == "tg":
        muted = await channel_muted(session, members[0], messenger.value)
        for member in members:
            await set_channel_muted(session, member, messenger.value, not muted, utcnow())
        await message.answer(texts("messenger_unmuted" if muted else "messenger_muted"))


def _row(buttons: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


async def on_language(
    callback: CallbackQuery, members: list[Member], texts: Texts, state: FSMContext
) -> None:
    code = (callback.data or "")[5:]
    if not members or code not in LANGUAGES:
        await callback.answer(texts("not_member" if not members else "choose_button"))
        return
    set_locale(members, code)
    await state.clear()
    await callback.answer()
    if isinstance(callback.message, Message):
        await edit_text(callback.message, texts.other(code)("language_set"), None)


async def on_time_of_day(
    callback: CallbackQuery, members: list[Member], texts: Texts, state: FSMContext
) -> None:
    value = (callback.data or "")[4:]
    if not members or value not in TimeOfDay.__members__:
        await callback.answer(texts("not_member" if not members else "choose_button"))
        return
    set_preferred_time(members, TimeOfDay(value))
    await state.clear()
    await callback.answer()
    if isinstance(callback.message, Message):
        await edit_text(callback.message, texts("time_of_day_set", time_of_day=texts(value)), None)


async def on_quiet_text(
    message: Message, members: list[Member], texts: Texts, state: FSMContext
) -> None:
    assert message.text is not None
    if not members:
        await state.clear()
        await message.answer(texts("not_member"))
        return
    try:
        window = parse_quiet_hours(message.text)
    except ValueError:
        await message.answer(texts("quiet_bad", text=message.text[:40]))
        return
    set_quiet_hours(members, window)
    await state.clear()
    if window is None:
        await message.answer(texts("quiet_off"))
    else:
        await message.answer(texts("quiet_set", quiet=f"{window[0]:%H:%M}-{window[1]:%H:%M}"))


async def on_free_text(message: Message, texts: Texts) -> None:
    await message.answer(texts("choose_button"))
