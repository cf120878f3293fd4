"""The Bot API emulator speaks to aiogram over real HTTP, and misbehaves on request like Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from emulators.telegram import BotApiEmulator

TOKEN = "123456:TEST-token"


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    server = BotApiEmulator(rate_per_second=5)
    server.introduce(*range(1, 100))  # these users have opened the bot
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(emulator: BotApiEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))
    client = Bot(TOKEN, session=session)
    yield client
    await client.session.close()


async def test_messages_with_buttons_are_recorded_and_can_be_edited(bot: Bot, emulator):
    me = await bot.get_me()
    assert me.username == "vestnik_emulator_bot"
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Going", callback_data="rsvp:1")]]
    )
    sent = await bot.send_message(chat_id=42, text="Planning tomorrow at 10", reply_markup=markup)
    assert sent.chat.id == 42
    [message] = emulator.sent_to(42)
    assert message.text == "Planning tomorrow at 10"
    assert message.reply_markup["inline_keyboard"][0][0]["callback_data"] == "rsvp:1"

    await bot.edit_message_text(chat_id=42, message_id=sent.message_id, text="You are going")
    assert emulator.sent_to(42)[0].text == "You are going"
    assert emulator.sent_to(42)[0].edits == ["Planning tomorrow at 10"]


async def test_edits_and_button_answers_are_refused_as_telegram_refuses_them(bot: Bot, emulator):
    sent = await bot.send_message(chat_id=42, text="Planning")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(chat_id=42, message_id=sent.message_id, text="Planning")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=42, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=42, message_id=sent.message_id + 100, text="x")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=43, message_id=sent.message_id, text="x")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("never-issued")
    message = emulator.sent_to(42)[0]
    emulator.user_presses({"id": 42}, message, "rsvp:1")
    [update] = await bot.get_updates(offset=0, timeout=0)
    assert update.callback_query is not None
    assert await bot.answer_callback_query(update.callback_query.id, text="Saved")
    with pytest.raises(TelegramBadRequest, match="query is too old"):  # answered already
        await bot.answer_callback_query(update.callback_query.id, text="Saved")


async def test_bad_messages_get_telegrams_400s(bot: Bot, emulator):
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Going", callback_data="x" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(chat_id=42, text="hi", reply_markup=too_long)
    fits = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Going", callback_data="я" * 32)]]
    )
    await bot.send_message(chat_id=42, text="hi", reply_markup=fits)  # 64 bytes exactly
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(chat_id=42, text="x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(chat_id=42, text="   ")
    assert len(emulator.messages) == 1


async def test_a_bot_cannot_write_first(bot: Bot, emulator):
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(chat_id=5000, text="hi")
    async with httpx.AsyncClient(base_url=emulator.base_url) as page:
        person = {"id": 5000, "first_name": "Anna"}
        await page.post("/emulator/send", json={"user": person, "text": "/start"})
    await bot.send_message(chat_id=5000, text="hi")  # she wrote first: now the bot may
    assert [m.text for m in emulator.sent_to(5000)] == ["hi"]


async def test_a_bot_that_keeps_sending_in_a_flood_wait_waits_longer(bot: Bot):
    strict = BotApiEmulator(rate_per_second=2, retry_after=(3, 3))
    strict.introduce(*range(1, 10))
    await strict.start()
    session = AiohttpSession(api=TelegramAPIServer.from_base(strict.base_url))
    client = Bot(TOKEN, session=session)
    try:
        for chat in (1, 2):
            await client.send_message(chat_id=chat, text="hi")
        with pytest.raises(TelegramRetryAfter) as first:
            await client.send_message(chat_id=3, text="hi")
        assert first.value.retry_after == 3  # drawn from the configured range
        with pytest.raises(TelegramRetryAfter) as again:
            await client.send_message(chat_id=3, text="hi")
        assert again.value.retry_after >= 4  # sending inside the wait made it longer
        assert strict.sent_during_wait == 1 and strict.rejected_429 == 2
    finally:
        await client.session.close()
        await strict.stop()


async def test_rate_limit_answers_429_with_retry_after(bot: Bot, emulator):
    for i in range(5):
        await bot.send_message(chat_id=i + 1, text="hi")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(chat_id=99, text="one too many")
    assert caught.value.retry_after >= 1
    assert emulator.rejected_429 == 1
    assert len(emulator.messages) == 5


async def test_injected_429_blocked_chat_and_missing_chat(bot: Bot, emulator):
    emulator.fail_next(1, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(chat_id=1, text="x")
    assert caught.value.retry_after == 7
    emulator.fail_next(1, retry_after=35, enforce=True)  # as Telegram: the wait holds
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(chat_id=1, text="x")
    with pytest.raises(TelegramRetryAfter) as held:
        await bot.send_message(chat_id=1, text="x")
    assert held.value.retry_after >= 35
    emulator.block(2)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(chat_id=2, text="x")
    emulator.missing_chats.add(3)
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(chat_id=3, text="x")
    assert emulator.messages == []


async def test_updates_are_delivered_by_get_updates(bot: Bot, emulator):
    emulator.push_update(
        {
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "Anna"},
                "text": "/start",
            }
        }
    )
    updates = await bot.get_updates(offset=0, timeout=0)
    assert [u.message.text for u in updates] == ["/start"]
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []


async def test_the_chat_page_reads_in_the_order_things_were_said(bot: Bot, emulator):
    """One sequence numbers what the person typed and what the bot sent, so the emulator's chat
    page (which sorts by it) shows a reply after the message it answers."""
    async with httpx.AsyncClient(base_url=emulator.base_url) as page:
        person = {"id": 42, "first_name": "Anna", "language_code": "en"}
        first = (await page.post("/emulator/send", json={"user": person, "text": "/start"})).json()
        reply = await bot.send_message(42, "Hi Anna!")
        second = (await page.post("/emulator/send", json={"user": person, "text": "/help"})).json()
        assert first["message_id"] < reply.message_id < second["message_id"]
        chat = (await page.get("/emulator/messages", params={"chat_id": 42})).json()
        assert [m["message_id"] for m in chat] == [reply.message_id]
        assert "at: m.message_id" in (await page.get("/emulator")).text
        icon = await page.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
