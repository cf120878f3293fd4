"""Members a bot cannot write to yet, and messages whose fate is unknown: told apart from blocks
and failures, shown to the lead, and one action each to fix (an invite, a resend)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.delivery.deliveries import LEFT_SENDING, mark_unknown
from core.delivery.dispatch import retry_deferred
from core.delivery.models import Delivery
from emulators.telegram import BotApiEmulator
from tests.conftest import ClientFor, Workspace
from tests.factories import member, ok, role_id
from tests.test_dispatch import KEY, Clock, run_due
from tests.webapp_helpers import sign_in
from worker.channels import TelegramChannel

START = "2026-12-10T09:00:00Z"
AT = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)  # the reminder an hour before


async def _event(ws: Workspace, *people: dict) -> dict:
    return await ok(  # type: ignore[no-any-return]
        ws.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"members": [p["id"] for p in people]},
                "reminder_offsets": [60],
                "confirmation_required": True,
                "confirm_before_minutes": 30,
            },
        ),
        201,
    )


async def test_a_member_who_never_opened_the_bot_is_not_joined_and_gets_an_invite(
    acme: Workspace,
    globex: Workspace,
    client_for: ClientFor,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    anna = await member(acme.client, "Anna", telegram_user_id=7101)
    boris = await member(acme.client, "Boris", telegram_user_id=7102, started=False)
    event = await _event(acme, anna, boris)
    await run_due(engine, telegram, AT)
    assert {m.chat_id for m in emulator.messages} == {7101}  # the reminder and the request

    # Not a block: Boris stays active, and the lead sees why he heard nothing.
    assert (await ok(acme.client.get(f"/members/{boris['id']}")))["status"] == "active"
    stats = await ok(acme.client.get(f"/events/{event['id']}/stats"))
    # Two messages (the reminder, the request) could not be sent to him.
    assert stats["deliveries"]["not_joined"] == 2 and stats["deliveries"]["unreachable"] == 0
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["not_joined"]] == ["Boris"]
    assert [p["name"] for p in board["silent"]] == ["Anna", "Boris"]
    day = {"since": "2026-12-10", "until": "2026-12-10"}
    days = await ok(acme.client.get("/stats/days", params=day))
    assert sum(d["not_joined"] for d in days["days"]) == 2

    # Others may not invite on this event's behalf: another workspace, a plain member.
    assert (await globex.client.post(f"/events/{event['id']}/invite-not-joined")).status_code == 404
    token = await ok(acme.client.post("/tokens", json={"name": "plain", "role": "member"}), 201)
    plain = client_for(token["token"])
    assert (await plain.post(f"/events/{event['id']}/invite-not-joined")).status_code == 403

    invites = await ok(acme.client.post(f"/events/{event['id']}/invite-not-joined"))
    assert [i["member"]["id"] for i in invites] == [boris["id"]]
    assert invites[0]["start_command"].startswith("/start ")

    # Boris opens the bot: the next message reaches him, and he is no longer listed.
    emulator.introduce(7102)
    await ok(acme.client.post(f"/events/{event['id']}/nudge"), 202)
    await run_due(engine, telegram, AT + timedelta(minutes=1))
    assert 7102 in [m.chat_id for m in emulator.messages]
    assert await ok(acme.client.post(f"/events/{event['id']}/invite-not-joined")) == []


async def test_messages_left_on_the_wire_become_unknown_and_a_lead_can_resend_them(
    acme: Workspace,
    globex: Workspace,
    client_for: ClientFor,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    people = [await member(acme.client, f"P{i}", telegram_user_id=7200 + i) for i in range(3)]
    broadcast = await ok(
        acme.client.post(
            "/broadcasts",
            json={"audience": {"members": [p["id"] for p in people]}, "text": "Hello"},
        ),
        201,
    )
    sessions = make_sessionmaker(engine)
    now = utcnow()
    await run_due(engine, telegram, now + timedelta(seconds=1))
    assert len(emulator.messages) == 3
    # As if the worker had died after handing two of them over, before recording the answers.
    async with sessions() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.member_id.in_([p["id"] for p in people[:2]]))
            .values(status="sending", handed_at=now)
        )
        await session.commit()
    lease = timedelta(minutes=5)
    async with sessions() as session:
        assert await mark_unknown(session, now + lease - timedelta(seconds=1), lease) == 0
        assert await mark_unknown(session, now + lease + timedelta(seconds=1), lease) == 2
        await session.commit()

    stats = await ok(acme.client.get(f"/broadcasts/{broadcast['id']}/stats"))
    assert stats["deliveries"]["unknown"] == 2
    assert stats["deliveries"]["unknown_by_reason"] == {LEFT_SENDING: 2}
    assert (await ok(acme.client.get(f"/broadcasts/{broadcast['id']}")))["progress"]["unknown"] == 2
    timeline = await ok(acme.client.get(f"/members/{people[0]['id']}/timeline"))
    assert LEFT_SENDING in str(timeline)

    target = f"/broadcasts/{broadcast['id']}/resend-unknown"
    assert (await globex.client.post(target)).status_code == 404
    token = await ok(acme.client.post("/tokens", json={"name": "plain", "role": "member"}), 201)
    assert (await client_for(token["token"]).post(target)).status_code == 403
    assert await ok(acme.client.post(target)) == {"resent": 2}
    assert await ok(acme.client.post(target)) == {"resent": 0}  # once
    report = await retry_deferred(sessions, [telegram], KEY, Clock(utcnow()))
    assert report.outcomes == {"sent": 2}
    assert sorted(m.chat_id for m in emulator.messages) == [7200, 7200, 7201, 7201, 7202]
    audit = await ok(acme.client.get("/audit"))
    assert any(e["action"] == "deliveries.resent" for e in audit)


async def test_the_leads_board_in_the_mini_app_lists_them_and_offers_the_invites(
    acme: Workspace,
    globex: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    site: httpx.AsyncClient,
):
    lead_role = await role_id(acme.client, "lead")
    lena = {"id": 7301, "first_name": "Lena"}
    await member(acme.client, "Lena", telegram_user_id=lena["id"], role_ids=[lead_role])
    boris = await member(acme.client, "Boris", telegram_user_id=7302, started=False)
    event = await _event(acme, boris)
    await run_due(engine, telegram, AT)

    csrf = await sign_in(site, lena)
    board = await site.get(f"/app/events/{event['id']}/board")
    assert "Never opened the bot" in board.text and "Boris" in board.text
    made = await site.post(
        f"/app/events/{event['id']}/invite-not-joined", headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code == 200 and "Boris" in made.text and "?start=i" in made.text
    stale = await site.post(f"/app/events/{event['id']}/invite-not-joined")
    assert stale.status_code == 403  # no CSRF token: a forged request changes nothing

    # A member of another workspace, even their lead, gets nothing of this event.
    their_lead = await role_id(globex.client, "lead")
    otto = {"id": 7303, "first_name": "Otto"}
    await member(globex.client, "Otto", telegram_user_id=otto["id"], role_ids=[their_lead])
    csrf = await sign_in(site, otto)
    theirs = await site.post(
        f"/app/events/{event['id']}/invite-not-joined", headers={"X-CSRF-Token": csrf}
    )
    assert theirs.status_code == 422 and "not found" in theirs.text
    # And a plain member of this one may not.
    csrf = await sign_in(site, {"id": 7302, "first_name": "Boris"})
    refused = await site.post(
        f"/app/events/{event['id']}/resend-unknown", headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 403
