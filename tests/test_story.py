"""The engine's user story, end to end: a lead's event for the group "Backend", through the Bot API
emulator over HTTP, with the real bot recording the buttons members press."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_sessionmaker
from core.delivery.dispatch import retry_deferred
from emulators.telegram import BotApiEmulator, Message
from tests.chats import Talk
from tests.conftest import Workspace
from tests.factories import group, member, ok
from tests.test_dispatch import KEY, Clock, run_due
from worker.channels import TelegramChannel

ANNA, BOB, VERA, DIMA, LENA = 1101, 1102, 1103, 1104, 1105


def press(emulator: BotApiEmulator, message: Message, user_id: int, label: str) -> None:
    """The member taps a button under ``message`` in their Telegram."""
    assert message.reply_markup is not None
    [button] = [b for b in message.reply_markup["inline_keyboard"][0] if b["text"] == label]
    emulator.push_update(
        {
            "callback_query": {
                "id": f"{message.message_id}-{user_id}",
                "from": {"id": user_id, "is_bot": False, "first_name": "Member"},
                "chat_instance": "1",
                "message": {
                    "message_id": message.message_id,
                    "date": 0,
                    "chat": {"id": message.chat_id, "type": "private"},
                    "text": message.text,
                },
                "data": button["callback_data"],
            }
        }
    )


async def eventually(check: Any, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_a_lead_learns_who_is_coming_to_the_backend_sync(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    telegram_bot: Talk,
):
    anna = await member(
        acme.client, "Анна Смирнова", telegram_user_id=ANNA, locale="ru", timezone="Europe/Moscow"
    )
    bob = await member(acme.client, "Bob Lee", telegram_user_id=BOB, timezone="Asia/Tokyo")
    vera = await member(
        acme.client,
        "Vera Stone",
        telegram_user_id=VERA,
        timezone="Europe/London",
        quiet_hours={"start": "19:00", "end": "23:00"},
    )
    dima = await member(acme.client, "Dima", telegram_user_id=DIMA, timezone="Europe/Moscow")
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena Lead", telegram_user_id=LENA, role_ids=[lead_role["id"]])
    backend = await group(acme.client, "Backend", anna, bob, vera, dima)
    await ok(acme.client.patch(f"/members/{dima['id']}", json={"status": "unsubscribed"}))
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Backend sync",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"groups": [backend["id"]]},
                "reminder_offsets": [1440, 60],
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    schedule = await ok(acme.client.get(f"/events/{event['id']}/schedule"))
    assert [(j["kind"], j["due_at"]) for j in schedule] == [
        ("confirmation_request", "2026-12-09T09:00:00Z"),
        ("reminder", "2026-12-09T09:00:00Z"),
        ("nudge", "2026-12-09T20:00:00Z"),
        ("deadline_summary", "2026-12-10T07:00:00Z"),
        ("reminder", "2026-12-10T08:00:00Z"),
    ]

    # A day before: each member of Backend gets the reminder and the request, in their own zone.
    await run_due(engine, telegram, datetime(2026, 12, 9, 9, 0, tzinfo=UTC))
    requests = {m.chat_id: m for m in emulator.messages if m.reply_markup}
    assert sorted(requests) == [ANNA, BOB, VERA]
    assert "четверг 10 декабря, 12:00" in requests[ANNA].text  # Moscow
    assert "Thursday 10 December, 18:00" in requests[BOB].text  # Tokyo
    assert emulator.sent_to(DIMA) == [] and emulator.sent_to(LENA) == []
    labels = [b["text"] for b in requests[ANNA].reply_markup["inline_keyboard"][0]]  # type: ignore[index]
    assert labels == ["Иду", "Не иду", "Возможно"]

    # Anna taps Going, Bob taps Not going; the bot records it and shows the choice.
    press(emulator, requests[ANNA], ANNA, "Иду")
    press(emulator, requests[BOB], BOB, "Not going")

    async def answered() -> bool:
        board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
        return bool(board["counts"]["going"] == 1 and board["counts"]["not_going"] == 1)

    await eventually(answered)

    # The nudge goes to the silent only; Vera is in her quiet hours, so it waits for 23:00 London.
    emulator.messages.clear()
    await run_due(engine, telegram, datetime(2026, 12, 9, 20, 0, tzinfo=UTC))
    assert emulator.messages == []
    sessions = make_sessionmaker(engine)
    await retry_deferred(sessions, [telegram], KEY, Clock(datetime(2026, 12, 9, 23, 0, tzinfo=UTC)))
    assert [m.chat_id for m in emulator.messages] == [VERA]
    assert emulator.messages[0].text.startswith("Vera, we still need your answer")

    # At the deadline the lead gets the list. Dima, who unsubscribed, was never asked, but he is
    # in Backend and has not answered: the lead sees him among the silent.
    emulator.messages.clear()
    await run_due(engine, telegram, datetime(2026, 12, 10, 7, 0, tzinfo=UTC))
    [summary] = emulator.sent_to(LENA)
    assert summary.text.splitlines()[1:] == [
        "Going 1: Анна Смирнова",
        "Not going 1: Bob Lee",
        "Maybe 0",
        "Silent 2: Dima, Vera Stone",
    ]

    # An hour before, the reminder again; Dima, unsubscribed and silent, still gets nothing.
    emulator.messages.clear()
    await run_due(engine, telegram, datetime(2026, 12, 10, 8, 0, tzinfo=UTC))
    assert sorted(m.chat_id for m in emulator.messages) == [ANNA, BOB, VERA]
