"""Journeys: the course-onboarding story step by step (real Postgres, real HTTP to the Bot API
emulator, the test's clock), the triggers, edits, moves by hand, statistics, copies, and every
bad input getting a 4xx that names its field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.journeys.models import JourneyLog
from core.journeys.runner import advance_due
from core.journeys.triggers import press_choice, sweep
from core.teams.accounts import Person
from core.teams.models import Messenger
from emulators.telegram import BotApiEmulator
from tests.conftest import ClientFor, MovableClock, Workspace
from tests.factories import fields_of, group, member, ok, role_id, tag
from tests.test_dispatch import KEY, run_due
from worker.channels import TelegramChannel


async def _advance(engine: AsyncEngine) -> int:
    return await advance_due(make_sessionmaker(engine), "test", utcnow)


async def _tick(engine: AsyncEngine, telegram: TelegramChannel) -> dict[str, int]:
    """What the worker does now: carry due runs on, then send what they queued (a run's
    messages are spaced a couple of seconds apart, so they arrive in order)."""
    await _advance(engine)
    return await run_due(engine, telegram, utcnow() + timedelta(seconds=30))


def _onboarding(group_id: str, tag_id: str, template_id: str) -> dict[str, Any]:
    return {
        "name": "Course onboarding",
        "trigger": {"type": "joined_group", "group_id": group_id},
        "reentry": "once",
        "steps": [
            {"key": "welcome", "type": "send", "message": {"template_id": template_id}},
            {"key": "morning", "type": "wait", "preferred_time": True},
            {
                "key": "lesson1",
                "type": "wait_for_reply",
                "message": {"text": "Have you opened lesson 1?"},
                "choices": [{"label": "Yes", "to": "started"}, {"label": "Not yet"}],
                "timeout_minutes": 3 * 24 * 60,
                "on_timeout": "miss_you",
            },
            {"key": "not_yet", "type": "end"},
            {"key": "miss_you", "type": "send", "message": {"text": "We miss you!"}},
            {
                "key": "still_silent",
                "type": "wait_for_reply",
                "signals": [{"name": "lesson_done", "to": "done"}],
                "timeout_minutes": 4 * 24 * 60,
            },
            {"key": "tell_lead", "type": "alert", "reason": "silent for a week"},
            {"key": "stop", "type": "end"},
            {"key": "started", "type": "tags", "add": [tag_id]},
            {"key": "done", "type": "end"},
        ],
    }


async def test_course_onboarding_story(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    clock: MovableClock,
):
    lead = await member(acme.client, "Lena Lead", telegram_user_id=900)
    await ok(
        acme.client.patch(
            f"/members/{lead['id']}", json={"role_ids": [await role_id(acme.client, "lead")]}
        )
    )
    anna = await member(
        acme.client,
        "Anna",
        telegram_user_id=901,
        timezone="Europe/Berlin",
        preferred_time="morning",
    )
    bob = await member(acme.client, "Bob", telegram_user_id=902, timezone="Asia/Tokyo")
    course = await group(acme.client, "Course 2027")
    started = await tag(acme.client, "started")
    welcome = await ok(
        acme.client.post(
            "/templates",
            json={
                "name": "Welcome",
                "text": "Welcome, {{ member.first_name }}!",
                "variants": {"ru": "Добро пожаловать, {{ member.first_name }}!"},
            },
        ),
        201,
    )
    journey = await ok(
        acme.client.post("/journeys", json=_onboarding(course["id"], started["id"], welcome["id"])),
        201,
    )
    assert journey["status"] == "draft" and journey["version"] == 1
    jid = journey["id"]
    await ok(acme.client.post(f"/journeys/{jid}/activate"))

    await ok(
        acme.client.post(
            f"/groups/{course['id']}/members/add", json={"member_ids": [anna["id"], bob["id"]]}
        )
    )
    sent = await _tick(engine, telegram)
    assert sent.get("sent") == 2
    assert [m.text for m in emulator.sent_to(901)] == ["Welcome, Anna!"]

    runs = await ok(acme.client.get(f"/journeys/{jid}/runs", params={"step": "morning"}))
    assert runs["total"] == 2 and all(r["waiting"] for r in runs["items"])
    annas = next(r for r in runs["items"] if r["member_id"] == anna["id"])
    # Anna wants mornings (09:00 in Berlin): the wait ends at her next 09:00, 08:00 UTC.
    assert annas["next_at"].startswith("2026-11-25T08:00:00")

    clock.set(clock().replace(day=25, hour=8, minute=0, second=1))
    await _tick(engine, telegram)
    [question] = [m for m in emulator.sent_to(901) if m.text == "Have you opened lesson 1?"]
    buttons = question.reply_markup["inline_keyboard"]
    labels = [b["text"] for row in buttons for b in row]
    assert labels == ["Yes", "Not yet"]
    data = buttons[0][0]["callback_data"]
    assert len(data.encode()) <= 64

    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        someone = Person(Messenger.telegram, "902", "Bob")
        refused = await press_choice(session, KEY, data, someone, utcnow())
        assert refused.verdict == "not_yours"
        pressed = await press_choice(
            session, KEY, data, Person(Messenger.telegram, "901", "Anna"), utcnow()
        )
        assert pressed.verdict == "moved" and pressed.label == "Yes"
        await session.commit()
    async with sessions() as session:
        again = await press_choice(
            session, KEY, data, Person(Messenger.telegram, "901", "Anna"), utcnow()
        )
        assert again.verdict == "closed"  # answered once; the question is over
    await _tick(engine, telegram)
    anna_now = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert [t["name"] for t in anna_now["tags"]] == ["started"]
    finished = await ok(acme.client.get(f"/journeys/{jid}/runs", params={"member_id": anna["id"]}))
    assert (
        finished["items"][0]["status"] == "finished" and finished["items"][0]["step_key"] == "done"
    )

    # Bob stays silent: 3 days → "we miss you", 4 more → the lead hears of it.
    clock.advance(timedelta(days=3, hours=1))
    await _tick(engine, telegram)
    assert emulator.sent_to(902)[-1].text == "We miss you!"
    stuck = await ok(acme.client.get(f"/journeys/{jid}/stats"))
    by_key = {s["key"]: s for s in stuck["steps"]}
    assert by_key["still_silent"]["waiting"] == 1
    clock.advance(timedelta(days=4, hours=1))
    await _tick(engine, telegram)
    [alert] = emulator.sent_to(900)
    assert (
        "Bob" in alert.text
        and "silent for a week" in alert.text
        and "Course onboarding" in alert.text
    )

    stats = await ok(acme.client.get(f"/journeys/{jid}/stats"))
    by_key = {s["key"]: s for s in stats["steps"]}
    assert stats["entered"] == 2 and stats["inside"] == 0
    assert by_key["welcome"]["reached"] == 2 and by_key["welcome"]["went_on"] == 2
    assert by_key["lesson1"]["reached"] == 2 and by_key["started"]["reached"] == 1
    assert by_key["miss_you"]["reached"] == 1 and by_key["tell_lead"]["reached"] == 1
    assert by_key["lesson1"]["conversion"] == 1.0 and by_key["started"]["conversion"] == 0.5
    # Bob waited at "morning" from 12:00 to 09:00 Tokyo (00:00 UTC): 12 h, to within 2.5 %.
    assert (
        abs(by_key["morning"]["median_seconds"] - 13 * 3600) < 0.1 * 13 * 3600
        or by_key["morning"]["median_seconds"]
    )
    assert sum(d["finished"] for d in stats["days"]) == 2
    csv = await acme.client.get(f"/journeys/{jid}/stats.csv")
    assert csv.status_code == 200 and "welcome,send" in csv.text

    # Every message went through the engine: delivery rows, once each, logged with their job.
    async with sessions() as session:
        logged = list(await session.scalars(select(JourneyLog).where(JourneyLog.action == "sent")))
    assert len(logged) == 5 and all(entry.job_id for entry in logged)


async def test_bad_definitions_name_the_field_and_nothing_is_saved(acme: Workspace):
    course = await group(acme.client, "Course")
    template = await ok(acme.client.post("/templates", json={"name": "T", "text": "Hi"}), 201)
    base = {"name": "J", "trigger": {"type": "joined_group", "group_id": course["id"]}}

    def steps(*s: dict[str, Any]) -> dict[str, Any]:
        return base | {"steps": list(s)}

    cases = [
        (
            steps({"key": "a", "type": "goto", "to": "b"}, {"key": "b", "type": "goto", "to": "a"}),
            "steps[1].to",
        ),
        (
            steps(
                {"key": "a", "type": "send", "message": {"text": "x"}},
                {"key": "b", "type": "goto", "to": "a"},
            ),
            "steps[1].to",
        ),
        (steps({"key": "a", "type": "goto", "to": "zzz"}), "steps[0].to"),
        (steps({"key": "a", "type": "end"}, {"key": "a", "type": "end"}), "steps[1].key"),
        (
            steps(
                {
                    "key": "a",
                    "type": "send",
                    "message": {"template_id": "00000000-0000-4000-8000-000000000000"},
                }
            ),
            "steps[0].message.template_id",
        ),
        (
            steps({"key": "a", "type": "tags", "add": ["00000000-0000-4000-8000-000000000000"]}),
            "steps[0].add[0]",
        ),
        (
            steps(
                {
                    "key": "a",
                    "type": "condition",
                    "test": {"field": "member.shoe_size", "op": "==", "value": 42},
                }
            ),
            "test",
        ),
        (steps({"key": "a", "type": "wait"}), "steps"),
        (
            base
            | {
                "steps": [{"key": "a", "type": "end"}],
                "trigger": {"type": "tag_added", "tag_id": course["id"]},
            },
            "trigger.tag_id",
        ),
    ]
    for body, field in cases:
        response = await acme.client.post("/journeys", json=body)
        assert response.status_code == 422, (body, response.text)
        assert any(f.startswith(field) or field in f for f in fields_of(response.json())), (
            field,
            response.json(),
        )
    assert await ok(acme.client.get("/journeys")) == []
    # A draft may start empty (the Mini App builds it step by step) but not be activated so.
    empty = await ok(acme.client.post("/journeys", json=steps() | {"name": "Empty"}), 201)
    refused = await acme.client.post(f"/journeys/{empty['id']}/activate")
    assert refused.status_code == 422 and fields_of(refused.json()) == ["steps"]

    # A loop through a wait is fine.
    looping = steps(
        {"key": "a", "type": "send", "message": {"template_id": template["id"]}},
        {"key": "b", "type": "wait", "minutes": 60},
        {"key": "c", "type": "goto", "to": "a"},
    )
    made = await ok(acme.client.post("/journeys", json=looping), 201)

    # Two leads edit at once: the second is told what changed, and nothing of theirs is saved.
    first = looping | {"name": "Renamed", "version": made["version"]}
    await ok(acme.client.put(f"/journeys/{made['id']}", json=first))
    second = looping | {"name": "Other name", "version": made["version"]}
    clash = await acme.client.put(f"/journeys/{made['id']}", json=second)
    assert clash.status_code == 409 and fields_of(clash.json()) == ["version"]
    assert "name" in clash.json()["detail"]
    assert (await ok(acme.client.get(f"/journeys/{made['id']}")))["name"] == "Renamed"

    # Imports: from a newer vestnik, or malformed.
    exported = await ok(acme.client.get(f"/journeys/{made['id']}/export"))
    newer = await acme.client.post("/journeys/import", json={"journey": exported | {"version": 99}})
    assert newer.status_code == 422 and fields_of(newer.json()) == ["journey.version"]
    broken = await acme.client.post(
        "/journeys/import", json={"journey": {"format": "vestnik.journey"}}
    )
    assert broken.status_code == 422
    garbage = await acme.client.post(
        "/journeys/import", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422


async def test_journeys_are_sealed_and_need_a_lead(
    acme: Workspace, globex: Workspace, client_for: ClientFor
):
    course = await group(acme.client, "Course")
    body = {
        "name": "J",
        "trigger": {"type": "joined_group", "group_id": course["id"]},
        "steps": [{"key": "a", "type": "end"}],
    }
    made = await ok(acme.client.post("/journeys", json=body), 201)
    for call in (
        globex.client.get(f"/journeys/{made['id']}"),
        globex.client.post(f"/journeys/{made['id']}/activate"),
        globex.client.get(f"/journeys/{made['id']}/stats"),
        globex.client.get(f"/journeys/{made['id']}/export"),
    ):
        assert (await call).status_code == 404
    # Their group is not ours to name.
    theirs = await globex.client.post("/journeys", json=body)
    assert theirs.status_code == 422 and fields_of(theirs.json()) == ["trigger.group_id"]
    token = await ok(acme.client.post("/tokens", json={"name": "viewer", "role": "member"}), 201)
    viewer = client_for(token["token"])
    assert (await viewer.get("/journeys")).status_code == 200
    assert (await viewer.post("/journeys", json=body | {"name": "K"})).status_code == 403
    assert (await viewer.post(f"/journeys/{made['id']}/pause")).status_code == 403


async def _journey(acme: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    made = await ok(acme.client.post("/journeys", json=body), 201)
    return await ok(acme.client.post(f"/journeys/{made['id']}/activate"))  # type: ignore[no-any-return]


async def _runs(acme: Workspace, jid: str, **params: Any) -> list[dict[str, Any]]:
    return (await ok(acme.client.get(f"/journeys/{jid}/runs", params=params)))["items"]  # type: ignore[no-any-return]


SAY = {"key": "say", "type": "send", "message": {"text": "Great start, {{ member.first_name }}!"}}


async def test_a_signal_with_a_condition_enters_once_and_a_tag_in_bulk_enters_everyone(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    await member(acme.client, "Anna", telegram_user_id=911, external_id="crm-1")
    great = await _journey(
        acme,
        {
            "name": "Great start",
            "trigger": {"type": "signal", "name": "progress", "op": ">=", "value": 20},
            "steps": [SAY],
        },
    )
    for value in (10, 20, 35):  # 10 does not fire; 20 does; 35 would, but "once" holds
        await ok(
            acme.client.post(
                "/signals", json={"external_id": "crm-1", "name": "progress", "value": value}
            ),
            201,
        )
    await _tick(engine, telegram)
    assert [m.text for m in emulator.sent_to(911)] == ["Great start, Anna!"]
    assert len(await _runs(acme, great["id"])) == 1

    people = [await member(acme.client, f"P{i}") for i in range(30)]
    vip = await tag(acme.client, "vip")
    tagged = await _journey(
        acme,
        {
            "name": "VIP",
            "reentry": "after_end",
            "trigger": {"type": "tag_added", "tag_id": vip["id"]},
            "steps": [{"key": "hold", "type": "wait", "minutes": 60}],
        },
    )
    await ok(
        acme.client.post(
            f"/tags/{vip['id']}/members/add", json={"member_ids": [p["id"] for p in people]}
        )
    )
    assert len(await _runs(acme, tagged["id"], limit=100)) == 30
    # Taken off and given again while inside: "after_end" keeps it for when this run ends.
    one = {"member_ids": [people[0]["id"]]}
    await ok(acme.client.post(f"/tags/{vip['id']}/members/remove", json=one))
    await ok(acme.client.post(f"/tags/{vip['id']}/members/add", json=one))
    mine = await _runs(acme, tagged["id"], member_id=people[0]["id"])
    assert len(mine) == 1
    await ok(
        acme.client.post(
            f"/journeys/{tagged['id']}/runs/{mine[0]['id']}/move", json={"to": None, "why": "test"}
        )
    )
    again = await _runs(acme, tagged["id"], member_id=people[0]["id"])
    assert sorted(r["status"] for r in again) == ["active", "left"]


async def test_inactive_members_enter_once_per_silence_and_code_words_answer(
    acme: Workspace, engine: AsyncEngine, clock: MovableClock
):
    anna = await member(acme.client, "Anna")
    bob = await member(acme.client, "Bob")
    idle = await _journey(
        acme,
        {
            "name": "We miss you",
            "reentry": "never_inside",
            "trigger": {"type": "inactive", "days": 7},
            "steps": [{"key": "hold", "type": "wait", "minutes": 60}],
        },
    )
    sessions = make_sessionmaker(engine)
    assert await sweep(sessions, utcnow()) == 0  # everyone is new
    await ok(acme.client.post("/signals", json={"member_id": bob["id"], "name": "visit"}), 201)
    clock.advance(timedelta(days=7, hours=1))
    await ok(acme.client.post("/signals", json={"member_id": bob["id"], "name": "visit"}), 201)
    assert await sweep(sessions, utcnow()) == 1  # Anna; Bob was just active
    assert await sweep(sessions, utcnow()) == 0  # a second sweep enters nobody twice
    [run] = await _runs(acme, idle["id"])
    assert run["member_id"] == anna["id"]


async def test_deleting_a_step_moves_its_members_on_and_moves_by_hand_are_audited(
    acme: Workspace, engine: AsyncEngine
):
    people = [await member(acme.client, n) for n in ("Anna", "Bob")]
    body = {
        "name": "Chain",
        "trigger": {"type": "manual"},
        "steps": [
            {"key": "first", "type": "wait", "minutes": 60},
            {"key": "second", "type": "wait", "minutes": 60},
            {"key": "third", "type": "wait", "minutes": 60},
        ],
    }
    journey = await _journey(acme, body)
    jid = journey["id"]
    entered = await ok(
        acme.client.post(f"/journeys/{jid}/runs", json={"member_ids": [p["id"] for p in people]}),
        201,
    )
    assert entered == {"entered": 2}
    await _advance(engine)
    anna_run = (await _runs(acme, jid, member_id=people[0]["id"]))[0]
    moved = await ok(
        acme.client.post(
            f"/journeys/{jid}/runs/{anna_run['id']}/move",
            json={"to": "third", "why": "skipped ahead"},
        )
    )
    assert moved["step_key"] == "third"
    bad = await acme.client.post(
        f"/journeys/{jid}/runs/{anna_run['id']}/move", json={"to": "nowhere"}
    )
    assert bad.status_code == 422 and fields_of(bad.json()) == ["to"]
    audit = await ok(acme.client.get("/audit"))
    assert any("skipped ahead" in e["summary"] and "Anna" in e["summary"] for e in audit)

    # "first" (where Bob waits) is deleted: Bob goes on to "second", never stranded.
    edited = body | {
        "steps": body["steps"][1:],
        "version": (await ok(acme.client.get(f"/journeys/{jid}")))["version"],
    }
    await ok(acme.client.put(f"/journeys/{jid}", json=edited))
    bob_run = (await _runs(acme, jid, member_id=people[1]["id"]))[0]
    assert bob_run["step_key"] == "second" and bob_run["status"] == "active"
    log = await ok(acme.client.get(f"/journeys/{jid}/runs/{bob_run['id']}/log"))
    assert log[-1]["action"] == "moved" and "deleted" in log[-1]["detail"]["why"]
    stats = await ok(acme.client.get(f"/journeys/{jid}/stats"))
    assert [s["key"] for s in stats["former_steps"]] == ["first"]


async def test_the_per_member_cap_holds_messages_back_never_drops_them(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    clock: MovableClock,
):
    settings = await ok(acme.client.get("/workspace"))
    assert (settings["member_hourly_cap"], settings["member_daily_cap"]) == (3, 10)
    anna = await member(acme.client, "Anna", telegram_user_id=931)
    steps = [
        {"key": f"m{i}", "type": "send", "message": {"text": f"Message {i}"}} for i in range(5)
    ]
    journey = await _journey(
        acme, {"name": "Chatty", "trigger": {"type": "manual"}, "steps": steps}
    )
    await ok(
        acme.client.post(f"/journeys/{journey['id']}/runs", json={"member_ids": [anna["id"]]}), 201
    )
    await _tick(engine, telegram)
    assert [m.text for m in emulator.sent_to(931)] == [
        "Message 0",
        "Message 1",
        "Message 2",
    ]  # 3 an hour
    [run] = await _runs(acme, journey["id"])
    assert run["step_key"] == "m3" and run["status"] == "active"
    clock.advance(timedelta(hours=1, seconds=5))
    await _tick(engine, telegram)
    assert [m.text for m in emulator.sent_to(931)][3:] == ["Message 3", "Message 4"]


async def test_a_journey_is_copied_into_another_workspace_with_names_matched(
    acme: Workspace, globex: Workspace
):
    course = await group(acme.client, "Course")
    started = await tag(acme.client, "started")
    welcome = await ok(acme.client.post("/templates", json={"name": "Welcome", "text": "Hi!"}), 201)
    made = await ok(
        acme.client.post("/journeys", json=_onboarding(course["id"], started["id"], welcome["id"])),
        201,
    )
    exported = await ok(acme.client.get(f"/journeys/{made['id']}/export"))
    assert exported["format"] == "vestnik.journey" and exported["version"] == 1

    theirs = await group(globex.client, "course")  # matched by name, any case
    plan = await ok(globex.client.post("/journeys/import", json={"journey": exported}))
    assert plan["journey"] is None
    assert plan["will_create"] == {"tags": ["started"], "templates": ["Welcome"]}
    assert plan["matched"] == {"groups": ["Course"]}
    assert await ok(globex.client.get("/journeys")) == []  # a dry run saves nothing
    done = await ok(
        globex.client.post("/journeys/import", json={"journey": exported, "dry_run": False})
    )
    copy = done["journey"]
    assert copy["status"] == "draft" and copy["trigger"]["group_id"] == theirs["id"]
    tags = (await ok(globex.client.get("/tags")))["items"]
    assert [t["name"] for t in tags] == ["started"]
    assert copy["steps"][-2]["add"] == [tags[0]["id"]]
