"""A member presses Going under a confirmation request: the bot records it, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import run_bot
from core.db import make_sessionmaker
from core.notify.answers import ButtonVerdict, record_button_answer
from core.settings import Settings
from core.teams.accounts import Person
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace
from tests.factories import member, ok
from tests.test_dispatch import KEY, run_due
from worker.channels import TelegramChannel, make_bot


@pytest.fixture
async def bot_running(
    emulator: BotApiEmulator, settings: Settings, pg_url: str
) -> AsyncIterator[None]:
    bot_settings = Settings(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        telegram_token="123456:TEST",
        telegram_api_url=emulator.base_url,
        secret_key=KEY.decode(),
    )
    stop = asyncio.Event()
    assert settings.redis_url is not None
    task = asyncio.create_task(run_bot(bot_settings, settings.redis_url, pg_url, stop))
    yield
    stop.set()
    await task


async def _request_sent(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator
) -> tuple[dict, dict]:
    anna = await member(acme.client, "Anna", telegram_user_id=301)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"members": [anna["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    bot = make_bot("123456:TEST", emulator.base_url)
    try:
        await run_due(engine, TelegramChannel(bot), datetime(2026, 12, 9, 7, 0, tzinfo=UTC))
    finally:
        await bot.session.close()
    return anna, event


def _press(emulator: BotApiEmulator, user_id: int, data: str) -> None:
    [message] = emulator.messages
    emulator.push_update(
        {
            "callback_query": {
                "id": str(len(emulator.messages) + user_id),
                "from": {"id": user_id, "is_bot": False, "first_name": "Someone"},
                "chat_instance": "1",
                "message": {
                    "message_id": message.message_id,
                    "date": 0,
                    "chat": {"id": message.chat_id, "type": "private"},
                    "text": message.text,
                },
                "data": data,
            }
        }
    )


async def _board(acme: Workspace, event: dict) -> dict:
    return await ok(acme.client.get(f"/events/{event['id']}/confirmations"))  # type: ignore[no-any-return]


async def _until(condition, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_pressing_going_records_the_answer_and_edits_the_message(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, bot_running: None
):
    _, event = await _request_sent(acme, engine, emulator)
    buttons = emulator.messages[0].reply_markup["inline_keyboard"][0]
    _press(emulator, 301, buttons[0]["callback_data"])

    async def recorded() -> bool:
        return (await _board(acme, event))["counts"]["going"] == 1

    await _until(recorded)
    assert [p["name"] for p in (await _board(acme, event))["going"]] == ["Anna"]

    async def edited() -> bool:
        return emulator.messages[0].text.endswith("✓ Your answer: Going")

    await _until(edited)
    # Pressing Going again changes nothing: the message is not edited to the text it has (real
    # Telegram refuses that with "message is not modified"), and the press is still answered.
    answered = len(emulator.callback_answers)
    _press(emulator, 301, buttons[0]["callback_data"])

    async def answered_again() -> bool:
        return len(emulator.callback_answers) > answered

    await _until(answered_again)
    assert emulator.messages[0].edits == [emulator.messages[0].edits[0]]
    assert emulator.refusals == []
    # Changing one's mind before the deadline is fine.
    _press(emulator, 301, buttons[1]["callback_data"])

    async def changed() -> bool:
        return (await _board(acme, event))["counts"]["not_going"] == 1

    await _until(changed)


async def test_a_forwarded_or_forged_button_changes_nothing(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, bot_running: None
):
    _, event = await _request_sent(acme, engine, emulator)
    going = emulator.messages[0].reply_markup["inline_keyboard"][0][0]["callback_data"]
    _press(emulator, 999, going)  # someone Anna forwarded the message to
    _press(emulator, 301, going[:-3] + "AAA")  # tampered data
    await asyncio.sleep(2)
    assert (await _board(acme, event))["counts"] == {
        "going": 0,
        "not_going": 0,
        "maybe": 0,
        "silent": 1,
    }
    assert emulator.messages[0].edits == []


async def test_answers_close_at_the_deadline(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator
):
    await _request_sent(acme, engine, emulator)
    going = emulator.messages[0].reply_markup["inline_keyboard"][0][0]["callback_data"]
    async with make_sessionmaker(engine)() as session:
        late = await record_button_answer(
            session, KEY, going, Person.on_telegram(301), datetime(2026, 12, 10, 7, 1, tzinfo=UTC)
        )
        in_time = await record_button_answer(
            session, KEY, going, Person.on_telegram(301), datetime(2026, 12, 10, 6, 59, tzinfo=UTC)
        )
        await session.commit()
    assert (late.verdict, in_time.verdict) == (ButtonVerdict.closed, ButtonVerdict.recorded)
