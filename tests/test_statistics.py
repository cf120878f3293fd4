"""Broadcast statistics against what the messenger really received; templates, idempotency,
local times, CSV, timelines, the audit log and /metrics; every figure sealed per workspace."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.delivery.dispatch import retry_deferred
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace
from tests.factories import fields_of, group, member, ok, tag
from tests.test_dispatch import KEY, Clock, run_due
from worker.channels import TelegramChannel


async def _drain(engine: AsyncEngine, telegram: TelegramChannel, at: datetime) -> datetime:
    """Send what is due at ``at``, then retry what the messenger deferred until nothing waits."""
    await run_due(engine, telegram, at)
    sessions = make_sessionmaker(engine)
    for _ in range(20):
        at += timedelta(seconds=2)
        report = await retry_deferred(sessions, [telegram], KEY, Clock(at))
        if not report.outcomes:
            break
    return at


async def _broadcast(ws: Workspace, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await ws.client.post("/broadcasts", json=body, headers=headers)


def _csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())  # spreadsheet apps then read UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_broadcast_statistics_add_up_to_what_the_messenger_received(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    people = [
        await member(acme.client, f"Person {i}", telegram_user_id=5000 + i, locale=locale)
        for i, locale in enumerate(["en", "ru", "en", "ru", "en", "en"])
    ]
    await member(acme.client, "No Telegram")  # in the audience, no channel reaches them
    team = await group(acme.client, "Team", *people)
    emulator.block(5005)
    emulator.fail_next(3, retry_after=1)  # a storm of 429s on the first sends
    created = await ok(
        _broadcast(
            acme,
            {
                "audience": {"groups": [team["id"]]},
                "text": "{{ member.first_name }}, the office is closed.",
                "variants": {"ru": "{{ member.first_name }}, офис закрыт."},
                "buttons": [{"text": "Details", "url": "https://example.org/office"}],
            },
        ),
        201,
    )
    await _drain(engine, telegram, utcnow() + timedelta(seconds=1))

    received = emulator.messages
    assert sorted(m.text for m in received) == [
        "Person, the office is closed.",
        "Person, the office is closed.",
        "Person, the office is closed.",
        "Person, офис закрыт.",
        "Person, офис закрыт.",
    ]
    assert all(
        m.reply_markup
        == {"inline_keyboard": [[{"text": "Details", "url": "https://example.org/office"}]]}
        for m in received
    )
    assert emulator.rejected_429 == 3

    stats = await ok(acme.client.get(f"/broadcasts/{created['id']}/stats"))
    deliveries = stats["deliveries"]
    assert stats["audience"] == 6 and stats["addressed"] == 6
    assert deliveries["sent"] == len(received) == 5
    assert deliveries["sent_by_channel"] == {"telegram": 5}
    assert deliveries["unreachable"] == 1
    assert deliveries["unreachable_by_reason"] == {"Forbidden: bot was blocked by the user": 1}
    assert deliveries["failed"] == deliveries["deferred"] == deliveries["queued"] == 0

    days = await ok(acme.client.get("/stats/days"))
    today = days["days"][-1]
    assert today["sent"] == {"telegram": 5} and today["unreachable"] == 1
    assert today["blocked"] == 1 and today["new_members"] == 7
    assert 1 <= today["peak_per_second"]["telegram"] <= 5
    assert sum(sum(d["sent"].values()) for d in days["days"]) == 5
    assert days["members"] == {
        "active": 6,
        "unsubscribed": 0,
        "unreachable": 1,
        "answered_in_period": 0,
    }

    rows = _csv(await acme.client.get(f"/broadcasts/{created['id']}/deliveries.csv"))
    assert rows[0][:6] == ["member", "channel", "kind", "occurrence", "status", "reason"]
    assert sorted(r[4] for r in rows[1:]) == ["sent"] * 5 + ["unreachable"]


async def test_templates_render_per_language_and_refuse_broken_wording(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Анна Смирнова", telegram_user_id=5101, locale="ru")
    bob = await member(acme.client, "Bob Lee", telegram_user_id=5102)
    made = await ok(
        acme.client.post(
            "/templates",
            json={
                "name": "Office closed",
                "text": "{{ member.first_name }}, the office is closed.",
                "variants": {"ru": "{{ member.first_name }}, офис закрыт."},
                "buttons": [{"text": "Map", "url": "https://example.org/map"}],
            },
        ),
        201,
    )
    preview = await ok(
        acme.client.post(f"/templates/{made['id']}/preview", json={"member_id": anna["id"]})
    )
    assert preview["text"] == "Анна, офис закрыт." and preview["locale"] == "ru"
    assert preview["buttons"] == [{"text": "Map", "url": "https://example.org/map"}]

    for body, field, says in [
        ({"name": "A", "text": "Hi {{ member.age }}"}, "text", "has no attribute 'age'"),
        ({"name": "B", "text": "Hi", "variants": {"ru": "{% if %}"}}, "variants.ru", "syntax"),
        ({"name": "C", "text": "{{ member.__class__ }}"}, "text", "not allowed"),
        (
            {"name": "D", "text": "Hi", "buttons": [{"text": "x", "url": "javascript:alert(1)"}]},
            "buttons[0].url",
            "",
        ),
    ]:
        response = await acme.client.post("/templates", json=body)
        assert response.status_code == 422, response.text
        assert fields_of(response.json()) == [field] and says in response.text
    duplicate = await acme.client.post("/templates", json={"name": "Office closed", "text": "x"})
    assert duplicate.status_code == 409 and fields_of(duplicate.json()) == ["name"]
    assert [t["name"] for t in await ok(acme.client.get("/templates"))] == ["Office closed"]

    sent = await ok(
        _broadcast(
            acme, {"audience": {"members": [anna["id"], bob["id"]]}, "template_id": made["id"]}
        ),
        201,
    )
    # Editing the template later does not change what the broadcast says.
    await ok(acme.client.patch(f"/templates/{made['id']}", json={"text": "Changed"}))
    await _drain(engine, telegram, utcnow() + timedelta(seconds=1))
    assert sorted(m.text for m in emulator.messages) == [
        "Bob, the office is closed.",
        "Анна, офис закрыт.",
    ]
    assert sent["template_id"] == made["id"]


async def test_the_same_idempotency_key_sends_once(
    acme: Workspace,
    globex: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    anna = await member(acme.client, "Anna", telegram_user_id=5201)
    body = {"audience": {"members": [anna["id"]]}, "text": "Once"}
    first = await _broadcast(acme, body, **{"Idempotency-Key": "order-42"})
    again = await _broadcast(acme, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = await _broadcast(acme, body | {"text": "Other"}, **{"Idempotency-Key": "order-42"})
    assert other.status_code == 409 and fields_of(other.json()) == ["Idempotency-Key"]
    # Another workspace's key space is its own.
    theirs = await member(globex.client, "Theirs", telegram_user_id=5202)
    mine = await _broadcast(
        globex,
        {"audience": {"members": [theirs["id"]]}, "text": "Once"},
        **{"Idempotency-Key": "order-42"},
    )
    assert mine.status_code == 201 and mine.json()["id"] != first.json()["id"]
    await _drain(engine, telegram, utcnow() + timedelta(seconds=1))
    assert sorted((m.chat_id, m.text) for m in emulator.messages) == [
        (5201, "Once"),
        (5202, "Once"),
    ]


async def test_nine_local_time_reaches_each_member_at_nine_in_their_zone(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    tokyo = await member(acme.client, "Tokyo", telegram_user_id=5301, timezone="Asia/Tokyo")
    berlin = await member(acme.client, "Berlin", telegram_user_id=5302, timezone="Europe/Berlin")
    day = (utcnow() + timedelta(days=2)).date()
    created = await ok(
        _broadcast(
            acme,
            {
                "audience": {"members": [tokyo["id"], berlin["id"]]},
                "text": "Good morning",
                "send_at": f"{day}T09:00:00",
                "local_time": True,
            },
        ),
        201,
    )
    assert created["local_time"] == f"{day}T09:00:00"
    job_due = datetime.fromisoformat(created["send_at"])
    await run_due(engine, telegram, job_due)
    progress = (await ok(acme.client.get(f"/broadcasts/{created['id']}")))["progress"]
    assert progress["deferred"] == 2 and emulator.messages == []

    sessions = make_sessionmaker(engine)
    tokyo_nine = datetime.fromisoformat(f"{day}T00:00:00+00:00")  # 09:00 JST
    await retry_deferred(sessions, [telegram], KEY, Clock(tokyo_nine - timedelta(minutes=1)))
    assert emulator.messages == []
    await retry_deferred(sessions, [telegram], KEY, Clock(tokyo_nine))
    assert [m.chat_id for m in emulator.messages] == [5301]
    # Berlin's 09:00 has not come yet; cancelling now stops it.
    cancelled = await ok(acme.client.post(f"/broadcasts/{created['id']}/cancel"))
    assert cancelled["progress"] == cancelled["progress"] | {"sent": 1, "cancelled": 1}
    await retry_deferred(sessions, [telegram], KEY, Clock(tokyo_nine + timedelta(hours=10)))
    assert [m.chat_id for m in emulator.messages] == [5301]

    # Without local_time, a time without an offset is the workspace's (Acme: Europe/Moscow).
    moscow = await ok(
        _broadcast(
            acme,
            {"audience": {"members": [tokyo["id"]]}, "text": "x", "send_at": f"{day}T09:00:00"},
        ),
        201,
    )
    assert datetime.fromisoformat(moscow["send_at"]) == datetime.fromisoformat(
        f"{day}T06:00:00+00:00"
    )
    past = await _broadcast(
        acme,
        {
            "audience": {"members": [tokyo["id"]]},
            "text": "x",
            "send_at": "2020-01-01T09:00:00",
            "local_time": True,
        },
    )
    assert past.status_code == 422 and fields_of(past.json()) == ["send_at"]


async def test_days_export_opens_in_a_spreadsheet_with_cyrillic_names(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    tricky = await member(acme.client, 'Пётр "Петя", Иванов', telegram_user_id=5401)
    created = await ok(
        _broadcast(acme, {"audience": {"members": [tricky["id"]]}, "text": "Привет"}), 201
    )
    await _drain(engine, telegram, utcnow() + timedelta(seconds=1))
    raw = await acme.client.get(f"/broadcasts/{created['id']}/deliveries.csv")
    assert '"Пётр ""Петя"", Иванов"' in raw.content.decode("utf-8-sig")
    rows = _csv(raw)
    assert rows[1][0] == 'Пётр "Петя", Иванов' and rows[1][4] == "sent"

    days = _csv(await acme.client.get("/stats/days.csv", params={"since": "2026-01-01"}))
    header, today = days[0], days[-1]
    assert header[:3] == ["day", "sent telegram", "sent total"]
    assert today[0] == utcnow().date().isoformat() and today[1:3] == ["1", "1"]
    too_long = await acme.client.get("/stats/days", params={"since": "2020-01-01"})
    assert too_long.status_code == 422 and fields_of(too_long.json()) == ["since"]


async def test_a_members_timeline_and_the_audit_log_tell_what_happened(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=5501)
    await tag(acme.client, "volunteer", anna)
    starts = utcnow() + timedelta(days=1)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Cleanup day",
                "starts_at": starts.isoformat(),
                "audience": {"members": [anna["id"]]},
                "reminder_offsets": [],
                "confirmation_required": True,
                "confirm_before_minutes": 60,
            },
        ),
        201,
    )
    await run_due(engine, telegram, utcnow())  # the request is due at once
    request = emulator.sent_to(5501)[0]
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    emulator.block(5501)
    await ok(_broadcast(acme, {"audience": {"members": [anna["id"]]}, "text": "News"}), 201)
    await _drain(engine, telegram, utcnow() + timedelta(seconds=1))

    timeline = await ok(acme.client.get(f"/members/{anna['id']}/timeline"))
    kinds = [(i["kind"], i.get("status")) for i in timeline["items"]]
    assert ("delivery", "sent") in kinds and ("delivery", "unreachable") in kinds
    assert ("answer", None) in kinds and ("tag", None) in kinds and ("change", None) in kinds
    summaries = " | ".join(i["summary"] for i in timeline["items"])
    assert "confirmation request: Cleanup day" in summaries and "going: Cleanup day" in summaries
    assert "tag 'volunteer' added" in summaries and "telegram cannot reach Anna" in summaries
    assert request.reply_markup is not None

    stats = await ok(acme.client.get(f"/events/{event['id']}/stats"))
    assert stats["answers"]["going"] == 1 and stats["answers"]["asked"] == 1
    assert stats["answers"]["first_answer_after_seconds"] is not None

    actions = [e["action"] for e in await ok(acme.client.get("/audit"))]
    assert actions[:3] == ["broadcast.created", "event.created", "tag.created"]
    assert "person.added" in actions and "member.blocked_channel" not in actions
    everyone = [e["action"] for e in await ok(acme.client.get("/audit?everyone=true"))]
    assert "member.blocked_channel" in everyone


async def test_statistics_exports_timelines_templates_and_audit_are_sealed(
    acme: Workspace, globex: Workspace, engine: AsyncEngine, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=5601)
    sent = await ok(_broadcast(acme, {"audience": {"members": [anna["id"]]}, "text": "Hi"}), 201)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Ours",
                "starts_at": (utcnow() + timedelta(days=1)).isoformat(),
                "audience": {"members": [anna["id"]]},
            },
        ),
        201,
    )
    template = await ok(acme.client.post("/templates", json={"name": "T", "text": "x"}), 201)
    await _drain(engine, telegram, utcnow() + timedelta(seconds=1))
    for path in [
        f"/broadcasts/{sent['id']}/stats",
        f"/broadcasts/{sent['id']}/deliveries.csv",
        f"/events/{event['id']}/stats",
        f"/events/{event['id']}/deliveries.csv",
        f"/members/{anna['id']}/timeline",
        f"/templates/{template['id']}",
    ]:
        assert (await globex.client.get(path)).status_code == 404, path
    assert (
        await globex.client.patch(f"/templates/{template['id']}", json={"text": "y"})
    ).status_code == 404
    assert (await globex.client.delete(f"/templates/{template['id']}")).status_code == 404
    preview = await globex.client.post(
        "/templates/preview", json={"text": "x", "member_id": anna["id"]}
    )
    assert preview.status_code == 404
    from_theirs = await _broadcast(
        globex, {"audience": {"members": []}, "text": "x", "template_id": template["id"]}
    )
    assert from_theirs.status_code in (404, 422)
    assert await ok(globex.client.get("/templates")) == []
    assert await ok(globex.client.get("/audit")) == []
    days = await ok(globex.client.get("/stats/days"))
    assert all(d["sent"] == {} and d["new_members"] == 0 for d in days["days"])
    rows = _csv(await globex.client.get("/stats/days.csv"))
    assert rows[0][1] == "sent total" and rows[-1][1] == "0"


async def test_statistics_need_a_lead(acme: Workspace, client_for, engine: AsyncEngine):
    made = await ok(acme.client.post("/tokens", json={"name": "viewer", "role": "member"}), 201)
    viewer = client_for(made["token"])
    for path in ["/stats/days", "/audit", "/templates", "/stats/days.csv"]:
        assert (await viewer.get(path)).status_code == 403, path


async def test_metrics_show_queue_depth_outcomes_and_lateness(
    acme: Workspace,
    app: object,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    anna = await member(acme.client, "Anna", telegram_user_id=5701)
    boris = await member(acme.client, "Boris", telegram_user_id=5702)
    emulator.block(5702)
    await ok(
        _broadcast(acme, {"audience": {"members": [anna["id"], boris["id"]]}, "text": "x"}), 201
    )
    later = (utcnow() + timedelta(hours=1)).isoformat()
    await ok(
        _broadcast(acme, {"audience": {"members": [anna["id"]]}, "text": "y", "send_at": later}),
        201,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://vestnik.test",  # type: ignore[arg-type]
    ) as root:
        before = (await root.get("/metrics")).text
        assert 'vestnik_queue_depth{what="jobs_due"} 1.0' in before
        await _drain(engine, telegram, utcnow() + timedelta(seconds=1))
        after = await root.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert 'vestnik_queue_depth{what="jobs_due"} 0.0' in text
    assert 'vestnik_deliveries_total{channel="telegram",status="sent"} 1.0' in text
    assert 'vestnik_deliveries_total{channel="telegram",status="unreachable"} 1.0' in text
    assert "vestnik_job_lateness_seconds_count 1.0" in text
    assert float(text.split("vestnik_job_lateness_seconds_sum ")[1].split()[0]) > 0
