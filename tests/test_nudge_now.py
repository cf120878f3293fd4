"""A lead's "nudge the silent now": through the API, the Mini App board and the engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from emulators.telegram import BotApiEmulator
from tests.conftest import ClientFor, Workspace
from tests.factories import fields_of, member, ok
from tests.test_dispatch import run_due
from tests.webapp_helpers import sign_in
from worker.channels import TelegramChannel


async def _asking(ws: Workspace, people: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    return await ok(  # type: ignore[no-any-return]
        ws.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": start.isoformat(),
                "audience": {"members": [p["id"] for p in people]},
                "confirmation_required": True,
                "confirm_before_minutes": 60,
                **extra,
            },
        ),
        201,
    )


async def test_nudge_now_reaches_only_the_silent_once_a_minute(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=6001)
    boris = await member(acme.client, "Boris", telegram_user_id=6002)
    event = await _asking(acme, [anna, boris])
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    job = await ok(acme.client.post(f"/events/{event['id']}/nudge"), 202)
    assert job["kind"] == "nudge"
    again = await acme.client.post(f"/events/{event['id']}/nudge")
    assert again.status_code == 409 and fields_of(again.json()) == ["occurrence"]
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    assert [(m.chat_id, m.text.split(",")[0]) for m in emulator.messages] == [(6002, "Boris")]


async def test_nudge_now_is_for_leads_of_the_workspace_and_checks_the_event(
    acme: Workspace, globex: Workspace, client_for: ClientFor
):
    anna = await member(acme.client, "Anna")
    event = await _asking(acme, [anna])
    assert (await globex.client.post(f"/events/{event['id']}/nudge")).status_code == 404
    token = await ok(acme.client.post("/tokens", json={"name": "plain", "role": "member"}), 201)
    plain = client_for(token["token"])
    assert (await plain.post(f"/events/{event['id']}/nudge")).status_code == 403
    silent = await ok(
        acme.client.post(
            "/events",
            json={"title": "No answers", "starts_at": event["starts_at"], "audience": {}},
        ),
        201,
    )
    response = await acme.client.post(f"/events/{silent['id']}/nudge")
    assert response.status_code == 422 and fields_of(response.json()) == ["event_id"]
    weekly = await _asking(acme, [anna], rrule="FREQ=WEEKLY")
    response = await acme.client.post(f"/events/{weekly['id']}/nudge")
    assert response.status_code == 422 and fields_of(response.json()) == ["occurrence"]


async def test_the_board_in_the_mini_app_has_the_nudge_button(
    acme: Workspace,
    site: httpx.AsyncClient,
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena", telegram_user_id=4002, role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna", telegram_user_id=4001)
    event = await _asking(acme, [anna])
    csrf = await sign_in(site, {"id": 4002, "first_name": "Lena"})
    board = await site.get(f"/app/events/{event['id']}/board")
    assert "Nudge the silent now" in board.text
    stale = await site.post(f"/app/events/{event['id']}/nudge", data={"occurrence": ""})
    assert stale.status_code == 403
    sent = await site.post(
        f"/app/events/{event['id']}/nudge", data={"occurrence": ""}, headers={"X-CSRF-Token": csrf}
    )
    assert sent.status_code == 200 and "on its way" in sent.text
    schedule = await ok(acme.client.get(f"/events/{event['id']}/schedule"))
    assert sum(1 for j in schedule if j["kind"] == "nudge") >= 1
