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

from bot.emulator import BotApiEmulator

TOKEN = "123456:TEST-token"


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    server = BotApiEmulator(rate_per_second=5)
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
