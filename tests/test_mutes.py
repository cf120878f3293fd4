"""Per-event mutes and unsubscribing: who asked for silence gets it, and only that."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace
from tests.factories import group, member, ok
from tests.test_dispatch import run_due
from worker.channels import TelegramChannel

START = "2026-12-10T09:00:00Z"


async def test_a_muted_event_is_silent_for_that_member_only_and_unmuting_brings_it_back(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=601)
    bob = await member(acme.client, "Bob", telegram_user_id=602)
    team = await group(acme.client, "Team", anna, bob)
    sync = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [120, 60],
            },
        ),
        201,
    )
    other = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Retro",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [120],
            },
        ),
        201,
    )
    await ok(acme.client.put(f"/events/{sync['id']}/mutes/{anna['id']}"), 204)
    await ok(acme.client.put(f"/events/{sync['id']}/mutes/{anna['id']}"), 204)  # twice is fine
    mutes = await ok(acme.client.get(f"/events/{sync['id']}/mutes"))
    assert [m["name"] for m in mutes] == ["Anna"]

    await run_due(engine, telegram, datetime(2026, 12, 10, 7, 0, tzinfo=UTC))
    got = sorted((m.chat_id, m.text.split(" — ")[0]) for m in emulator.messages)
    assert got == [(601, "Reminder: Retro"), (602, "Reminder: Retro"), (602, "Reminder: Sync")]

    await ok(acme.client.delete(f"/events/{sync['id']}/mutes/{anna['id']}"), 204)
    emulator.messages.clear()
    await run_due(engine, telegram, datetime(2026, 12, 10, 8, 0, tzinfo=UTC))
    assert sorted(m.chat_id for m in emulator.messages) == [601, 602]
    assert other["id"] != sync["id"]


async def test_unsubscribed_members_get_reminders_only_for_what_they_said_going_to(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    vera = await member(acme.client, "Vera", telegram_user_id=611)
    ivan = await member(acme.client, "Ivan", telegram_user_id=612)
    team = await group(acme.client, "Team", vera, ivan)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [60],
                "confirmation_required": True,
                "confirm_by": "2026-12-10T06:00:00Z",
            },
        ),
        201,
    )
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{vera['id']}", json={"answer": "going"}
        )
    )
    for person in (vera, ivan):
        await ok(acme.client.patch(f"/members/{person['id']}", json={"status": "unsubscribed"}))

    # The nudge and the request reach neither; the reminder reaches Vera, who said she is going.
    await run_due(engine, telegram, datetime(2026, 12, 10, 8, 0, tzinfo=UTC))
    assert [(m.chat_id, m.text.startswith("Reminder: Offsite")) for m in emulator.messages] == [
        (611, True)
    ]


async def test_mutes_are_sealed_between_workspaces(acme: Workspace, globex: Workspace):
    anna = await member(acme.client, "Anna")
    outsider = await member(globex.client, "Otto")
    event = await ok(acme.client.post("/events", json={"title": "Sync", "starts_at": START}), 201)
    theirs = await ok(
        globex.client.post("/events", json={"title": "Theirs", "starts_at": START}), 201
    )
    # Another workspace's event or member is not found, whichever side it is on.
    for client, event_id, member_id in (
        (globex.client, event["id"], outsider["id"]),
        (acme.client, event["id"], outsider["id"]),
        (acme.client, theirs["id"], anna["id"]),
    ):
        response = await client.put(f"/events/{event_id}/mutes/{member_id}")
        assert response.status_code == 404, response.text
        response = await client.delete(f"/events/{event_id}/mutes/{member_id}")
        assert response.status_code == 404, response.text
    assert (await globex.client.get(f"/events/{event['id']}/mutes")).status_code == 404
    assert await ok(acme.client.get(f"/events/{event['id']}/mutes")) == []
