"""The journeys story end to end: real `vestnik scheduler` and `vestnik worker` processes, the
real bot over HTTP to the Bot API emulator, a member pressing a button, another staying silent,
and a worker killed mid-journey. Every message arrives once."""

from __future__ import annotations

import signal

from sqlalchemy.ext.asyncio import AsyncEngine

from emulators.telegram import BotApiEmulator
from tests.chats import Talk
from tests.conftest import MovableClock, Workspace
from tests.factories import group, member, ok, role_id, tag
from tests.test_dispatch import KEY
from tests.test_faults import _real_time, _until, start  # noqa: F401 (fixtures)
from tests.test_story import eventually, press

ANNA, BOB, LENA = 4101, 4102, 4100


async def test_onboarding_through_real_processes_with_a_worker_killed_mid_journey(
    clock: MovableClock,
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    start,  # noqa: F811
    telegram_bot: Talk,
):
    lena = await member(acme.client, "Lena", telegram_user_id=LENA)
    # Her daily report is off: the real scheduler would send it at 09:00 of the machine's day,
    # whichever hour this test runs at (the report has tests of its own, on a test clock).
    await ok(
        acme.client.patch(
            f"/members/{lena['id']}",
            json={"role_ids": [await role_id(acme.client, "lead")], "daily_report_at": None},
        )
    )
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA)
    bob = await member(acme.client, "Bob", telegram_user_id=BOB)
    course = await group(acme.client, "Course 2027")
    started = await tag(acme.client, "started")
    journey = await ok(
        acme.client.post(
            "/journeys",
            json={
                "name": "Course onboarding",
                "trigger": {"type": "joined_group", "group_id": course["id"]},
                "steps": [
                    {
                        "key": "welcome",
                        "type": "send",
                        "message": {"text": "Welcome, {{ member.first_name }}!"},
                    },
                    {
                        "key": "ask",
                        "type": "wait_for_reply",
                        "message": {"text": "Have you opened lesson 1?"},
                        "choices": [{"label": "Yes", "to": "started"}],
                        "timeout_minutes": 1,
                        "on_timeout": "miss_you",
                    },
                    {"key": "miss_you", "type": "send", "message": {"text": "We miss you!"}},
                    {"key": "tell_lead", "type": "alert", "reason": "no answer to lesson 1"},
                    {"key": "stop", "type": "end"},
                    {"key": "started", "type": "tags", "add": [started["id"]]},
                ],
            },
        ),
        201,
    )
    await ok(acme.client.post(f"/journeys/{journey['id']}/activate"))
    start("scheduler")
    # The worker signs the buttons it sends; the bot here checks them with the test's key.
    doomed = start("worker", VESTNIK_SECRET_KEY=KEY.decode())

    def texts(chat: int) -> list[str]:
        return [m.text.split("\n\n✓")[0] for m in emulator.sent_to(chat)]

    await ok(
        acme.client.post(f"/groups/{course['id']}/members/add", json={"member_ids": [anna["id"]]})
    )
    await _until(lambda: texts(ANNA) == ["Welcome, Anna!", "Have you opened lesson 1?"])
    press(emulator, emulator.sent_to(ANNA)[1], ANNA, "Yes")

    async def anna_started() -> bool:
        tags = (await ok(acme.client.get(f"/members/{anna['id']}")))["tags"]
        return [t["name"] for t in tags] == ["started"]

    await eventually(anna_started)

    # Bob joins; the worker is killed as soon as his welcome is out, and another takes over.
    await ok(
        acme.client.post(f"/groups/{course['id']}/members/add", json={"member_ids": [bob["id"]]})
    )
    await _until(lambda: len(texts(BOB)) >= 1)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    start("worker", VESTNIK_SECRET_KEY=KEY.decode())
    await _until(lambda: texts(BOB)[:2] == ["Welcome, Bob!", "Have you opened lesson 1?"], 60)
    # Silent for the minute the question waits: "we miss you", and the lead hears of it.
    await _until(lambda: len(texts(BOB)) == 3 and len(texts(LENA)) == 1, 150)
    assert texts(BOB) == ["Welcome, Bob!", "Have you opened lesson 1?", "We miss you!"]
    assert "Bob" in texts(LENA)[0] and "no answer to lesson 1" in texts(LENA)[0]
    stats = await ok(acme.client.get(f"/journeys/{journey['id']}/stats"))
    by_key = {s["key"]: s for s in stats["steps"]}
    assert stats["entered"] == 2 and stats["inside"] == 0
    assert (by_key["started"]["reached"], by_key["miss_you"]["reached"]) == (1, 1)
    assert texts(ANNA) == ["Welcome, Anna!", "Have you opened lesson 1?"]  # nothing twice
