"""Broadcasts through the API and the engine: personal text, progress, cancelling, bad templates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace
from tests.factories import fields_of, group, member, ok
from tests.test_dispatch import run_due
from worker.channels import TelegramChannel


async def test_a_broadcast_reaches_each_member_by_name_and_reports_progress(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Анна Смирнова", telegram_user_id=3001)
    boris = await member(acme.client, "Boris Lee", telegram_user_id=3002)
    gone = await member(acme.client, "Gone", telegram_user_id=3003)
    team = await group(acme.client, "Team", anna, boris, gone)
    emulator.block(3003)
    created = await ok(
        acme.client.post(
            "/broadcasts",
            json={
                "audience": {"groups": [team["id"]]},
                "text": "{{ member.first_name }}, the office is closed tomorrow.",
            },
        ),
        201,
    )
    assert created["recipients"] == 3 and created["job_status"] == "pending"
    assert created["status"] == "sending"  # due now: it goes with the scheduler's next pass
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    assert sorted(m.text for m in emulator.messages) == [
        "Boris, the office is closed tomorrow.",
        "Анна, the office is closed tomorrow.",
    ]
    done = await ok(acme.client.get(f"/broadcasts/{created['id']}"))
    assert done["job_status"] == "done" and done["status"] == "done"
    assert done["progress"]["sent"] == 2 and done["progress"]["unreachable"] == 1
    response = await acme.client.post(f"/broadcasts/{created['id']}/cancel")
    assert response.status_code == 409


async def test_a_member_no_channel_reaches_is_counted_unreachable_and_stays_active(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=3021)
    paper = await member(acme.client, "Pavel Paper")  # never opened the bot, no email
    created = await ok(
        acme.client.post(
            "/broadcasts",
            json={"audience": {"members": [anna["id"], paper["id"]]}, "text": "Hello"},
        ),
        201,
    )
    assert created["recipients"] == 2
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    done = await ok(acme.client.get(f"/broadcasts/{created['id']}"))
    assert done["status"] == "done"
    progress = {k: v for k, v in done["progress"].items() if v}
    assert progress == {"sent": 1, "unreachable": 1}  # every recipient is in one bucket
    timeline = await ok(acme.client.get(f"/members/{paper['id']}/timeline"))
    assert "not joined the bot, no email" in str(timeline)
    # Linking Telegram later brings the next message: the member was never marked unreachable.
    assert (await ok(acme.client.get(f"/members/{paper['id']}")))["status"] == "active"
    await ok(acme.client.patch(f"/members/{paper['id']}", json={"telegram_user_id": 3022}))
    # Known to vestnik, but Pavel has never opened the bot: Telegram lets no bot write first.
    again = await ok(
        acme.client.post(
            "/broadcasts", json={"audience": {"members": [paper["id"]]}, "text": "Again"}
        ),
        201,
    )
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    assert emulator.sent_to(3022) == []
    progress = (await ok(acme.client.get(f"/broadcasts/{again['id']}")))["progress"]
    assert {k: v for k, v in progress.items() if v} == {"not_joined": 1}
    assert (await ok(acme.client.get(f"/members/{paper['id']}")))["status"] == "active"
    emulator.introduce(3022)  # he presses Start
    await ok(
        acme.client.post(
            "/broadcasts", json={"audience": {"members": [paper["id"]]}, "text": "Now"}
        ),
        201,
    )
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    assert [m.text for m in emulator.sent_to(3022)] == ["Now"]


async def test_a_scheduled_broadcast_can_be_cancelled_before_it_goes(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=3011)
    later = (utcnow() + timedelta(hours=2)).isoformat()
    created = await ok(
        acme.client.post(
            "/broadcasts",
            json={"audience": {"members": [anna["id"]]}, "text": "Later", "send_at": later},
        ),
        201,
    )
    assert created["status"] == "scheduled"
    cancelled = await ok(acme.client.post(f"/broadcasts/{created['id']}/cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["job_status"] == "cancelled"
    await run_due(engine, telegram, utcnow() + timedelta(hours=3))
    assert emulator.messages == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Hi {{ member.age }}", "has no attribute 'age'"),
        ("Hi {{ member.first_name", "template syntax error on line 1"),
        ("{{ member.__class__.__mro__ }}", "not allowed in a message"),
        ("{{ '' }}", "the message would be empty"),
        # What could stall or crash the server is refused before it runs, in proportion to the text.
        (
            "{% for x in range(10000) %}{% for y in range(10000) %}x{% endfor %}{% endfor %}",
            "loops ({% for %}) cannot be used",
        ),
        ("{{ 'a' * 10**7 }}", "not allowed in a message"),
        ("{{ 'a' * 5000 }}", "repeating text past 4096"),
        ("{{ 2 ** 100000 }}", "an exponent above 64"),
        ("{{ member.name * 2000 }}", "repeating text past"),
        ("{% include 'x.html' %}", "{% include %} cannot be used"),
        ("{% import 'x.html' as x %}", "{% import %} cannot be used"),
        ("{% extends 'base.html' %}", "{% extends %} cannot be used"),
        ("{{ range(10**9) }}", "calling functions or methods"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "macros cannot be used"),
        ("{{ member.name.format_map }}", "not allowed in a message"),
        ("{{ member.name.upper() }}", "calling functions or methods"),
        ("{% set x = 1 %}{{ x }}", "{% set %} cannot be used"),
        ("{{ member.name|center(100000) }}", "No filter named 'center'"),
        ("{{ 'x' ~ 1 / 0 }}", "cannot be rendered"),
    ],
)
async def test_bad_templates_are_refused_naming_the_text(acme: Workspace, text: str, says: str):
    anna = await member(acme.client, "Anna")
    response = await acme.client.post(
        "/broadcasts", json={"audience": {"members": [anna["id"]]}, "text": text}
    )
    assert response.status_code == 422, response.text
    assert fields_of(response.json()) == ["text"]
    assert says in response.json()["detail"]
    # The same text as a template, and its preview, is the same 422 (never a 500).
    saved = await acme.client.post("/templates", json={"name": "t", "text": text})
    assert saved.status_code == 422 and fields_of(saved.json()) == ["text"], saved.text
    preview = await acme.client.post(
        "/templates/preview", json={"text": text, "member_id": anna["id"]}
    )
    assert preview.status_code == 422 and fields_of(preview.json()) == ["text"], preview.text


async def test_what_a_template_may_use_still_works(acme: Workspace):
    anna = await member(acme.client, "anna smirnova")
    text = "{% if member.first_name %}Hi {{ member.first_name|title }}{% endif %} {{ '-' * 3 }}"
    preview = await ok(
        acme.client.post("/templates/preview", json={"text": text, "member_id": anna["id"]})
    )
    assert preview["text"] == "Hi Anna ---"


async def test_broadcasts_are_sealed_between_workspaces(acme: Workspace, globex: Workspace):
    theirs = await group(globex.client, "Theirs")
    response = await acme.client.post(
        "/broadcasts", json={"audience": {"groups": [theirs["id"]]}, "text": "Hi"}
    )
    assert response.status_code == 422 and fields_of(response.json()) == ["audience.groups[0]"]
    anna = await member(acme.client, "Anna")
    mine = await ok(
        acme.client.post("/broadcasts", json={"audience": {"members": [anna["id"]]}, "text": "x"}),
        201,
    )
    assert (await globex.client.get(f"/broadcasts/{mine['id']}")).status_code == 404
    assert (await globex.client.post(f"/broadcasts/{mine['id']}/cancel")).status_code == 404
    past = (utcnow() - timedelta(hours=1)).isoformat()
    response = await acme.client.post(
        "/broadcasts",
        json={"audience": {"members": [anna["id"]]}, "text": "x", "send_at": past},
    )
    assert response.status_code == 422 and fields_of(response.json()) == ["send_at"]
