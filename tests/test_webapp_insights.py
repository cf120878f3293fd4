"""Mini App: statistics with SVG charts and CSV, templates with preview and errors, a member's
timeline, the audit log, the composer's template and local-time options; sealed per workspace."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace
from tests.factories import member, ok, role_id
from tests.test_dispatch import run_due
from tests.webapp_helpers import sign_in
from worker.channels import TelegramChannel

LENA = {"id": 7101, "first_name": "Lena"}
GLEB = {"id": 7102, "first_name": "Gleb"}


async def _lead(ws: Workspace, user: dict, name: str) -> dict:
    return await member(
        ws.client, name, telegram_user_id=user["id"], role_ids=[await role_id(ws.client, "lead")]
    )


async def test_a_lead_sees_charts_exports_timelines_and_the_audit_log(
    acme: Workspace,
    site: httpx.AsyncClient,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    await _lead(acme, LENA, "Lena Lead")
    anna = await member(acme.client, "Анна Смирнова", telegram_user_id=7201, locale="ru")
    await ok(acme.client.patch("/workspace", json={"daily_limit": 500}))
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}

    made = await site.post(
        "/app/templates",
        data={
            "name": "Closed",
            "text": "{{ member.first_name }}, closed today.",
            "text_ru": "{{ member.first_name }}, сегодня закрыто.",
            "link_text": "Map",
            "link_url": "https://example.org/map",
        },
        headers=headers,
    )
    assert made.status_code == 200 and "Closed" in made.text
    bad = await site.post(
        "/app/templates", data={"name": "Bad", "text": "Hi {{ member.age }}"}, headers=headers
    )
    assert bad.status_code == 422 and "has no attribute &#39;age&#39;" in bad.text
    assert [t["name"] for t in await ok(acme.client.get("/templates"))] == ["Closed"]
    shown = await site.post(
        "/app/templates/preview",
        data={
            "name": "x",
            "text": "{{ member.first_name }}!",
            "text_ru": "{{ member.first_name }}, привет",
            "sample": anna["id"],
        },
        headers=headers,
    )
    assert "Анна, привет" in shown.text

    template = (await ok(acme.client.get("/templates")))[0]
    filled = await site.get("/app/compose/template", params={"template_id": template["id"]})
    assert "closed today." in filled.text
    garbled = await site.get("/app/compose/template", params={"template_id": "not-an-id"})
    assert garbled.status_code == 422 and "template_id" in garbled.text
    sent = await site.post(
        "/app/compose/send",
        data={"members": [anna["id"]], "text": template["text"], "template_id": template["id"]},
        headers=headers,
    )
    assert sent.status_code == 200, sent.text
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    assert [m.text for m in emulator.messages] == ["Анна, сегодня закрыто."]

    later = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT09:00")
    local = await site.post(
        "/app/compose/send",
        data={"members": [anna["id"]], "text": "Morning", "send_at": later, "local_time": "1"},
        headers=headers,
    )
    assert local.status_code == 200, local.text
    broadcasts = await ok(acme.client.get("/audit"))
    assert (
        broadcasts[0]["action"] == "broadcast.created" and "local time" in broadcasts[0]["summary"]
    )

    stats = await site.get("/app/stats")
    assert stats.status_code == 200
    assert stats.text.count('<svg class="chart"') == 4
    assert "daily limit 500" in stats.text and "сегодня закрыто" not in stats.text
    exported = await site.get("/app/stats/days.csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[-1][1:3] == ["1", "1"]
    # Newest first: the local-time one waits; the template one has gone.
    broadcast_id = stats.text.split("/app/stats/broadcast/")[2].split(".csv")[0]
    per_member = await site.get(f"/app/stats/broadcast/{broadcast_id}.csv")
    assert "Анна Смирнова" in per_member.content.decode("utf-8-sig")

    timeline = await site.get(f"/app/people/{anna['id']}/timeline")
    assert (
        timeline.status_code == 200 and "Анна Смирнова" in timeline.text and "sent" in timeline.text
    )
    audit = await site.get("/app/audit")
    assert "template.created" in audit.text and "Lena Lead" in audit.text


async def test_insight_pages_are_for_leads_and_sealed(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna", telegram_user_id=7301)
    template = await ok(acme.client.post("/templates", json={"name": "Ours", "text": "x"}), 201)
    await _lead(globex, GLEB, "Gleb Lead")
    await sign_in(site, GLEB)
    assert (await site.get(f"/app/people/{anna['id']}/timeline")).status_code == 404
    assert "Ours" not in (await site.get("/app/templates")).text
    assert "template.created" not in (await site.get("/app/audit")).text
    filled = await site.get("/app/compose/template", params={"template_id": template["id"]})
    assert filled.status_code == 404
    # A member (not a lead) is refused.
    await member(acme.client, "Plain", telegram_user_id=7302)
    await sign_in(site, {"id": 7302, "first_name": "Plain"})
    for path in ["/app/stats", "/app/templates", "/app/audit", "/app/stats/days.csv"]:
        assert (await site.get(path)).status_code == 403, path
