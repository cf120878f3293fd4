"""Journey steps and triggers beyond the onboarding story: a signed webhook retried with backoff
(a real HTTP receiver), groups and conditions, a paused journey, the weekday schedule in each
member's zone, a confirmation left unanswered, and waits that land in a DST gap."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.journeys.definition import Wait
from core.journeys.runner import advance_due, wait_until
from core.journeys.triggers import sweep
from core.teams.models import Member
from emulators.telegram import BotApiEmulator
from tests.conftest import MovableClock, Workspace
from tests.factories import group, member, ok
from tests.test_dispatch import run_due
from worker.channels import TelegramChannel


async def _advance(engine: AsyncEngine) -> int:
    return await advance_due(make_sessionmaker(engine), "test", utcnow)


async def _journey(acme: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    made = await ok(acme.client.post("/journeys", json=body), 201)
    return await ok(acme.client.post(f"/journeys/{made['id']}/activate"))  # type: ignore[no-any-return]


async def _runs(acme: Workspace, jid: str, **params: Any) -> list[dict[str, Any]]:
    return (await ok(acme.client.get(f"/journeys/{jid}/runs", params=params)))["items"]  # type: ignore[no-any-return]


class Receiver:
    """A CRM endpoint on a real socket: answers with the queued statuses, then 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        await asyncio.sleep(self.delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


async def test_a_webhook_is_signed_retried_with_backoff_and_logged(
    acme: Workspace, engine: AsyncEngine, receiver: Receiver, clock: MovableClock
):
    anna = await member(acme.client, "Anna", external_id="crm-7")
    journey = await _journey(
        acme,
        {
            "name": "Tell the CRM",
            "trigger": {"type": "manual"},
            "steps": [
                {"key": "notify", "type": "webhook", "url": receiver.url},
                {"key": "after", "type": "wait", "minutes": 60},
            ],
        },
    )
    jid = journey["id"]
    receiver.statuses = [503, 500]
    await ok(acme.client.post(f"/journeys/{jid}/runs", json={"member_ids": [anna["id"]]}), 201)
    await _advance(engine)
    [run] = await _runs(acme, jid)
    assert run["step_key"] == "notify" and len(receiver.calls) == 1
    await _advance(engine)
    assert len(receiver.calls) == 1  # the retry waits for its backoff, not for the next pass
    clock.advance(timedelta(seconds=6))
    await _advance(engine)
    clock.advance(timedelta(seconds=11))
    await _advance(engine)
    assert len(receiver.calls) == 3
    [run] = await _runs(acme, jid)
    assert run["step_key"] == "after" and run["status"] == "active"

    secret = journey["webhook_secret"]
    deliveries = set()
    for headers, body in receiver.calls:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Vestnik-Signature"] == expected
        deliveries.add(headers["X-Vestnik-Delivery"])
        payload = json.loads(body)
        assert payload["member"] == {"id": anna["id"], "name": "Anna", "external_id": "crm-7"}
        assert payload["step"] == "notify" and payload["journey"]["id"] == jid
    assert len(deliveries) == 1  # one delivery id across retries: the receiver can spot repeats
    log = await ok(acme.client.get(f"/journeys/{jid}/runs/{run['id']}/log"))
    tries = [e["detail"]["result"] for e in log if e["action"] == "webhook"]
    assert tries == ["HTTP 503", "HTTP 500", "HTTP 200"]


async def test_a_webhook_that_never_answers_fails_the_run_after_its_tries(
    acme: Workspace, engine: AsyncEngine, receiver: Receiver, clock: MovableClock
):
    anna = await member(acme.client, "Anna")
    journey = await _journey(
        acme,
        {
            "name": "Broken CRM",
            "trigger": {"type": "manual"},
            "steps": [{"key": "notify", "type": "webhook", "url": receiver.url}],
        },
    )
    receiver.statuses = [500] * 20
    await ok(
        acme.client.post(f"/journeys/{journey['id']}/runs", json={"member_ids": [anna["id"]]}),
        201,
    )
    for _ in range(12):
        await _advance(engine)
        clock.advance(timedelta(hours=1))
    [run] = await _runs(acme, journey["id"])
    assert run["status"] == "failed" and len(receiver.calls) == 8
    stats = await ok(acme.client.get(f"/journeys/{journey['id']}/stats"))
    [step] = stats["steps"]
    assert step["failed"] == 1


async def test_a_slow_webhook_receiver_never_holds_a_batch_past_its_lease(
    acme: Workspace, engine: AsyncEngine, receiver: Receiver
):
    people = [await member(acme.client, f"P{i}") for i in range(5)]
    journey = await _journey(
        acme,
        {
            "name": "Slow CRM",
            "trigger": {"type": "manual"},
            "steps": [
                {"key": "notify", "type": "webhook", "url": receiver.url},
                {"key": "after", "type": "wait", "minutes": 60},
            ],
        },
    )
    everyone = {"member_ids": [p["id"] for p in people]}
    await ok(acme.client.post(f"/journeys/{journey['id']}/runs", json=everyone), 201)
    receiver.delay = 0.6
    sessions = make_sessionmaker(engine)
    # A 2-second lease leaves the batch one second for its work: two calls take longer.
    await advance_due(sessions, "test", utcnow, lease=timedelta(seconds=2))
    assert 1 <= len(receiver.calls) <= 2
    left = await _runs(acme, journey["id"], step="notify")
    assert len(left) == 5 - len(receiver.calls) and all(r["status"] == "active" for r in left)
    for _ in range(10):  # the rest go in the passes that follow, each called once
        await advance_due(sessions, "test", utcnow, lease=timedelta(seconds=2))
    assert len(receiver.calls) == 5
    assert len(await _runs(acme, journey["id"], step="after")) == 5


async def test_groups_steps_and_conditions_branch_on_what_the_member_has(
    acme: Workspace, engine: AsyncEngine
):
    anna = await member(acme.client, "Anna", locale="ru")
    bob = await member(acme.client, "Bob")
    alumni = await group(acme.client, "Alumni")
    russian = await group(acme.client, "Russian speakers")
    journey = await _journey(
        acme,
        {
            "name": "Graduation",
            "trigger": {"type": "manual"},
            "steps": [
                {"key": "graduate", "type": "groups", "add": [alumni["id"]]},
                {
                    "key": "lang",
                    "type": "condition",
                    "test": {"field": "member.locale", "op": "==", "value": "ru"},
                    "then": "ru",
                    "else": "done",
                },
                {"key": "ru", "type": "groups", "add": [russian["id"]]},
                {"key": "done", "type": "wait", "minutes": 60},
            ],
        },
    )
    both = {"member_ids": [anna["id"], bob["id"]]}
    await ok(acme.client.post(f"/journeys/{journey['id']}/runs", json=both), 201)
    await _advance(engine)
    listed = await ok(acme.client.get(f"/groups/{alumni['id']}/members"))
    assert sorted(m["name"] for m in listed["items"]) == ["Anna", "Bob"]
    listed = await ok(acme.client.get(f"/groups/{russian['id']}/members"))
    assert [m["name"] for m in listed["items"]] == ["Anna"]
    log = await ok(
        acme.client.get(
            f"/journeys/{journey['id']}/runs/"
            f"{(await _runs(acme, journey['id'], member_id=bob['id']))[0]['id']}/log"
        )
    )
    assert [e["step_key"] for e in log if e["action"] == "entered"] == [
        "graduate",
        "lang",
        "done",
    ]


async def test_a_paused_journey_holds_everyone_where_they_are_until_resumed(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    clock: MovableClock,
):
    anna = await member(acme.client, "Anna", telegram_user_id=951)
    course = await group(acme.client, "Course")
    journey = await _journey(
        acme,
        {
            "name": "Drip",
            "trigger": {"type": "joined_group", "group_id": course["id"]},
            "steps": [
                {"key": "wait", "type": "wait", "minutes": 60},
                {"key": "hello", "type": "send", "message": {"text": "Lesson 2 is out"}},
            ],
        },
    )
    jid = journey["id"]
    await ok(
        acme.client.post(f"/groups/{course['id']}/members/add", json={"member_ids": [anna["id"]]})
    )
    await _advance(engine)
    await ok(acme.client.post(f"/journeys/{jid}/pause"))
    clock.advance(timedelta(hours=2))
    await _advance(engine)
    await run_due(engine, telegram, utcnow())
    assert emulator.sent_to(951) == []
    [run] = await _runs(acme, jid)
    assert run["step_key"] == "wait" and run["status"] == "active"
    bob = await member(acme.client, "Bob")
    await ok(
        acme.client.post(f"/groups/{course['id']}/members/add", json={"member_ids": [bob["id"]]})
    )
    assert len(await _runs(acme, jid)) == 1  # a paused journey takes nobody in

    await ok(acme.client.post(f"/journeys/{jid}/activate"))
    await _advance(engine)
    await run_due(engine, telegram, utcnow() + timedelta(seconds=30))
    assert [m.text for m in emulator.sent_to(951)] == ["Lesson 2 is out"]


async def test_a_weekday_schedule_fires_at_nine_in_each_members_own_zone(
    acme: Workspace, engine: AsyncEngine, clock: MovableClock
):
    team = await group(acme.client, "Team")
    berlin = await member(acme.client, "Berliner", timezone="Europe/Berlin")
    tokyo = await member(acme.client, "Tokyoite", timezone="Asia/Tokyo")
    await member(acme.client, "Outsider", timezone="Europe/Berlin")
    await ok(
        acme.client.post(
            f"/groups/{team['id']}/members/add", json={"member_ids": [berlin["id"], tokyo["id"]]}
        )
    )
    journey = await _journey(
        acme,
        {
            "name": "Standup",
            "reentry": "after_end",
            "trigger": {
                "type": "schedule",
                "weekdays": [1, 2, 3, 4, 5],
                "time": "09:00",
                "audience": {"groups": [team["id"]]},
            },
            "steps": [{"key": "ask", "type": "wait", "minutes": 5}],
        },
    )
    sessions = make_sessionmaker(engine)
    # Friday 27 November 2026, 08:00:30 UTC: 09:00:30 in Berlin, 17:00:30 in Tokyo (past 9 +
    # the grace, so Tokyo's Friday was missed on purpose: it happened before the journey).
    clock.set(datetime(2026, 11, 27, 8, 0, 30, tzinfo=UTC))
    assert await sweep(sessions, utcnow()) == 1
    assert await sweep(sessions, utcnow()) == 0  # once a day, however often the sweep runs
    [run] = await _runs(acme, journey["id"])
    assert run["member_id"] == berlin["id"]
    await _advance(engine)  # into the five-minute wait
    # Saturday and Sunday nobody; Monday 09:00 in Tokyo is Sunday 00:00 UTC.
    clock.set(datetime(2026, 11, 28, 8, 0, 30, tzinfo=UTC))
    await _advance(engine)  # the wait is over: the run ends
    assert await sweep(sessions, utcnow()) == 0
    clock.set(datetime(2026, 11, 30, 0, 0, 30, tzinfo=UTC))
    assert await sweep(sessions, utcnow()) == 1
    clock.set(datetime(2026, 11, 30, 8, 0, 30, tzinfo=UTC))
    assert await sweep(sessions, utcnow()) == 1
    entered = sorted(r["member_id"] for r in await _runs(acme, journey["id"], limit=10))
    assert entered == sorted([berlin["id"], berlin["id"], tokyo["id"]])


async def test_a_confirmation_left_unanswered_at_its_deadline_starts_a_journey(
    acme: Workspace, engine: AsyncEngine, telegram: TelegramChannel, clock: MovableClock
):
    anna = await member(acme.client, "Anna", telegram_user_id=961)
    bob = await member(acme.client, "Bob", telegram_user_id=962)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"members": [anna["id"], bob["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    journey = await _journey(
        acme,
        {
            "name": "Chase the silent",
            "trigger": {"type": "unanswered", "event_id": event["id"]},
            "steps": [{"key": "call", "type": "alert", "reason": "did not answer"}],
        },
    )
    assert await run_due(engine, telegram, datetime(2026, 12, 9, 7, 0, tzinfo=UTC)) == {"sent": 2}
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    deadline = datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
    await run_due(engine, telegram, deadline)
    clock.set(deadline + timedelta(minutes=1))
    sessions = make_sessionmaker(engine)
    assert await sweep(sessions, utcnow()) == 1
    assert await sweep(sessions, utcnow()) == 0
    [run] = await _runs(acme, journey["id"])
    assert run["member_id"] == bob["id"]


@pytest.mark.parametrize(
    ("wait", "now", "expected"),
    [
        # 02:30 does not happen in Berlin on 29 March 2026: the wait ends at 03:30 CEST.
        (
            {"until_time": time(2, 30)},
            datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        ),
        # 02:30 happens twice on 25 October 2026: the first, 02:30 CEST.
        (
            {"until_time": time(2, 30)},
            datetime(2026, 10, 24, 23, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
        # Morning (09:00) the day after the clocks go forward is still 09:00 local.
        (
            {"preferred_time": True},
            datetime(2026, 3, 28, 9, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # A date without an offset is in the member's zone.
        (
            {"until": datetime(2026, 7, 1, 9, 0)},
            datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
            datetime(2026, 7, 1, 7, 0, tzinfo=UTC),
        ),
    ],
)
def test_waits_end_at_the_members_local_time_across_dst(
    wait: dict[str, Any], now: datetime, expected: datetime
):
    berliner = Member(timezone="Europe/Berlin", preferred_time="morning")
    step = Wait.model_validate({"key": "w", "type": "wait", **wait})
    assert wait_until(step, berliner, now) == expected
