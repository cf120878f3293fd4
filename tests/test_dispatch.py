"""Sending a job: the right people, in their language and zone, once, through a real HTTP Bot API."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.delivery.answer_buttons import decode_answer
from core.delivery.dispatch import MAX_ATTEMPTS, dispatch_job, retry_deferred
from core.delivery.jobs import claim_due_jobs
from core.delivery.models import Delivery, Job, JobStatus
from core.delivery.ratelimit import RateLimiter
from core.events.models import Answer
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace, free_port
from tests.factories import group, member, ok, tag
from worker.channels import TelegramChannel, Warmth, make_bot

KEY = b"test-signing-key"
START = "2026-12-10T09:00:00Z"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def _sync_an_hour_ahead(acme: Workspace, who: dict[str, Any]) -> None:
    """An event at START for ``who`` alone, with one reminder an hour before it."""
    event = {
        "title": "Sync",
        "starts_at": START,
        "audience": {"members": [who["id"]]},
        "reminder_offsets": [60],
    }
    await ok(acme.client.post("/events", json=event), 201)


async def run_due(engine: AsyncEngine, channel: TelegramChannel, at: datetime) -> dict[str, int]:
    """What `vestnik scheduler` and `vestnik worker` do for the jobs due at ``at``."""
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        jobs = await claim_due_jobs(session, "test", at)
        await session.commit()
    totals: dict[str, int] = {}
    for job in jobs:
        report = await dispatch_job(sessions, job.id, [channel], KEY, Clock(at))
        for k, v in report.outcomes.items():
            totals[k] = totals.get(k, 0) + v
    return totals


async def test_reminder_reaches_each_member_once_in_their_language_and_zone(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(
        acme.client,
        "Anna Petrova",
        telegram_user_id=101,
        locale="ru",
        timezone="Asia/Yekaterinburg",
    )
    bob = await member(acme.client, "Bob", telegram_user_id=102, timezone="Europe/Berlin")
    no_telegram = await member(acme.client, "Carl")
    await group(acme.client, "Backend", anna, bob, no_telegram)
    backend = (await ok(acme.client.get("/groups")))["items"][0]
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Planning",
                "location": "Room 1",
                "starts_at": START,
                "audience": {"groups": [backend["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    assert await run_due(engine, telegram, at) == {
        "sent": 2,
        "unreachable": 1,
    }  # Carl: no Telegram, no email
    assert [m.text for m in emulator.sent_to(101)] == [
        "Напоминание: Planning — четверг 10 декабря, 14:00, Room 1."
    ]
    assert [m.text for m in emulator.sent_to(102)] == [
        "Reminder: Planning — Thursday 10 December, 10:00, Room 1."
    ]
    # The same job handled again (a second worker, a redelivered task) sends nothing more.
    async with make_sessionmaker(engine)() as session:
        await session.execute(update(Job).values(status=JobStatus.claimed.value))
        await session.commit()
        job_id = (await session.scalars(select(Job.id))).one()
    await dispatch_job(make_sessionmaker(engine), job_id, [telegram], KEY, Clock(at))
    assert len(emulator.messages) == 2


async def test_audience_is_resolved_when_sending_not_when_planning(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=201)
    bob = await member(acme.client, "Bob", telegram_user_id=202)
    vera = await member(acme.client, "Vera", telegram_user_id=203)
    team = await group(acme.client, "Team", anna, bob, vera)
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    await ok(
        acme.client.post(f"/groups/{team['id']}/members/remove", json={"member_ids": [bob["id"]]})
    )
    await ok(acme.client.patch(f"/members/{vera['id']}", json={"status": "unsubscribed"}))
    late = await member(acme.client, "Late joiner", telegram_user_id=204)
    await ok(
        acme.client.post(f"/groups/{team['id']}/members/add", json={"member_ids": [late["id"]]})
    )

    await run_due(engine, telegram, datetime(2026, 12, 10, 8, 0, tzinfo=UTC))
    assert sorted(m.chat_id for m in emulator.messages) == [201, 204]


async def test_confirmation_request_buttons_are_signed_and_nudges_go_to_the_silent_only(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=301)
    bob = await member(acme.client, "Bob", telegram_user_id=302)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": START,
                "audience": {"members": [anna["id"], bob["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    request_at = datetime(2026, 12, 9, 7, 0, tzinfo=UTC)  # 24 h before the deadline
    assert await run_due(engine, telegram, request_at) == {"sent": 2}
    [request] = emulator.sent_to(301)
    buttons = request.reply_markup["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Going", "Not going", "Maybe"]
    pressed = decode_answer(KEY, buttons[0]["callback_data"])
    assert pressed is not None and pressed.answer == Answer.going
    assert decode_answer(b"another key", buttons[0]["callback_data"]) is None

    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    nudge_at = datetime(2026, 12, 9, 19, 0, tzinfo=UTC)
    assert await run_due(engine, telegram, nudge_at) == {"sent": 1}
    assert len(emulator.sent_to(301)) == 1 and len(emulator.sent_to(302)) == 2
    assert emulator.sent_to(302)[1].text.startswith("Bob, we still need your answer for Offsite")


async def test_blocked_member_becomes_unreachable_and_keeps_tags(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=401)
    await tag(acme.client, "vip", anna)
    await _sync_an_hour_ahead(acme, anna)
    emulator.block(401)
    assert await run_due(engine, telegram, datetime(2026, 12, 10, 8, 0, tzinfo=UTC)) == {
        "unreachable": 1
    }
    after = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert after["status"] == "unreachable"
    assert [t["name"] for t in after["tags"]] == ["vip"]


async def test_429_defers_the_delivery_and_the_retry_sends_it_once(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=501)
    await _sync_an_hour_ahead(acme, anna)
    emulator.fail_next(1, retry_after=3)
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    assert await run_due(engine, telegram, at) == {"retry": 1}
    sessions = make_sessionmaker(engine)
    too_soon = await retry_deferred(sessions, [telegram], KEY, Clock(at + timedelta(seconds=1)))
    assert too_soon.outcomes == {}
    later = await retry_deferred(sessions, [telegram], KEY, Clock(at + timedelta(seconds=4)))
    assert later.outcomes == {"sent": 1}
    assert len(emulator.sent_to(501)) == 1
    async with sessions() as session:
        delivery = (await session.scalars(select(Delivery))).one()
    # A 429 is not a failure: it does not use up one of the bounded attempts.
    assert (delivery.status, delivery.attempts) == ("sent", 1)


async def test_a_storm_of_429s_never_gives_up_a_message_while_it_is_still_useful(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=511)
    await _sync_an_hour_ahead(acme, anna)
    emulator.fail_next(MAX_ATTEMPTS * 2, retry_after=1)
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    await run_due(engine, telegram, at)
    sessions = make_sessionmaker(engine)
    for second in range(1, MAX_ATTEMPTS * 2 + 1):
        await retry_deferred(sessions, [telegram], KEY, Clock(at + timedelta(seconds=second)))
    assert len(emulator.sent_to(511)) == 1


async def test_a_retry_that_would_arrive_after_the_start_is_dropped(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=521)
    await _sync_an_hour_ahead(acme, anna)
    emulator.fail_next(1, retry_after=1)
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    await run_due(engine, telegram, at)
    sessions = make_sessionmaker(engine)
    report = await retry_deferred(sessions, [telegram], KEY, Clock(at + timedelta(hours=2)))
    assert report.outcomes == {"failed": 1}
    assert emulator.sent_to(521) == []
    async with sessions() as session:
        delivery = (await session.scalars(select(Delivery))).one()
    assert delivery.last_error == "too late: the moment it was for has passed"


async def test_a_worker_that_died_before_sending_leaves_its_queue_to_the_next_one(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    """Rows are queued for the whole audience, then handed over a batch at a time: the rows a
    dead worker never handed over are sent by the next attempt of the job, exactly once."""
    people = [await member(acme.client, f"P{i}", telegram_user_id=800 + i) for i in range(3)]
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"members": [p["id"] for p in people]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        [job] = await claim_due_jobs(session, "crashing worker", at)
        # It queued all three, handed P0's to Telegram (maybe sent, maybe not), then died.
        for i, person in enumerate(people):
            await session.execute(
                Delivery.__table__.insert().values(
                    id=uuid.uuid4(),
                    workspace_id=acme.id,
                    job_id=job.id,
                    member_id=person["id"],
                    channel="telegram",
                    status="sending" if i == 0 else "queued",
                    attempts=1 if i == 0 else 0,
                )
            )
        await session.commit()
    report = await dispatch_job(sessions, job.id, [telegram], KEY, Clock(at))
    assert report.outcomes == {"sent": 2}
    assert sorted(m.chat_id for m in emulator.messages) == [801, 802]
    again = await dispatch_job(sessions, job.id, [telegram], KEY, Clock(at))
    assert again.outcomes == {}


@pytest.mark.parametrize("change", ["move", "delete"])
async def test_an_event_changed_while_its_reminder_is_going_out_stops_the_rest(
    change: str,
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    redis_url: str,
):
    people = [await member(acme.client, f"P{i:02}", telegram_user_id=900 + i) for i in range(40)]
    team = await group(acme.client, "Team", *people)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        [job] = await claim_due_jobs(session, "w", at)
        await session.commit()
    emulator.delay = 0.5
    # Telegram's limits (30 a second): batches of half a second, a few on their way at once.
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    limiter = RateLimiter(redis)
    sending = asyncio.create_task(
        dispatch_job(sessions, job.id, [telegram], KEY, Clock(at), limiter=limiter)
    )
    for _ in range(200):
        if emulator.messages:
            break
        await asyncio.sleep(0.05)
    if change == "move":
        moved = {"starts_at": "2026-12-11T09:00:00Z", "ends_at": "2026-12-11T10:00:00Z"}
        await ok(acme.client.patch(f"/events/{event['id']}", json=moved))
    else:
        await ok(acme.client.delete(f"/events/{event['id']}"), 204)
    report = await sending
    await redis.aclose()
    emulator.delay = 0.0
    first_wave = len(emulator.messages)
    assert report.outcomes["dropped"] == 1
    assert 0 < first_wave < 40  # the batches already handed over went; the rest did not
    assert len({m.chat_id for m in emulator.messages}) == first_wave
    async with sessions() as session:
        statuses = list(await session.scalars(select(Delivery.status)))
    assert statuses.count("sent") == first_wave
    assert statuses.count("failed") == 40 - first_wave

    emulator.messages.clear()
    await run_due(engine, telegram, datetime(2026, 12, 11, 8, 0, tzinfo=UTC))
    if change == "move":  # everyone hears the new time, once
        assert sorted(m.chat_id for m in emulator.messages) == list(range(900, 940))
        assert all("11 December" in m.text for m in emulator.messages)
    else:
        assert emulator.messages == []


async def test_an_event_cancelled_while_its_job_is_in_flight_sends_nothing(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=601)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"members": [anna["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        [job] = await claim_due_jobs(session, "w", at)
        await session.commit()
    await ok(acme.client.delete(f"/events/{event['id']}"), 204)
    await dispatch_job(sessions, job.id, [telegram], KEY, Clock(at))
    assert emulator.messages == []


async def test_a_worker_that_died_while_sending_never_causes_a_second_message(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    """The documented trade-off: the delivery row is committed before the channel is called, so a
    crash between the two leaves the row in 'sending' and no worker sends it again (at most once)."""
    anna = await member(acme.client, "Anna", telegram_user_id=701)
    bob = await member(acme.client, "Bob", telegram_user_id=702)
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"members": [anna["id"], bob["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        [job] = await claim_due_jobs(session, "crashing worker", at)
        # The crashed worker had claimed Anna's delivery and then died.
        await session.execute(
            Delivery.__table__.insert().values(
                id=uuid.uuid4(),
                workspace_id=acme.id,
                job_id=job.id,
                member_id=anna["id"],
                channel="telegram",
                status="sending",
                attempts=1,
            )
        )
        await session.commit()
    await dispatch_job(sessions, job.id, [telegram], KEY, Clock(at))
    assert [m.chat_id for m in emulator.messages] == [702]


async def test_leads_get_the_summary_at_the_deadline(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    lead = await member(acme.client, "Lena Lead", telegram_user_id=801, role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna", telegram_user_id=802)
    bob = await member(acme.client, "Bob", telegram_user_id=803)
    vera = await member(acme.client, "Vera", telegram_user_id=804)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": START,
                "audience": {"members": [anna["id"], bob["id"], vera["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{bob['id']}", json={"answer": "not_going"}
        )
    )
    await run_due(engine, telegram, datetime(2026, 12, 10, 7, 0, tzinfo=UTC))
    [summary] = emulator.sent_to(801)
    assert summary.text.splitlines() == [
        "Offsite, Thursday 10 December, 12:00: answers are in.",
        "Going 1: Anna",
        "Not going 1: Bob",
        "Maybe 0",
        "Silent 1: Vera",
    ]
    assert lead["id"]


async def test_quiet_hours_hold_a_message_until_morning_unless_it_would_be_too_late(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    night = {"start": "22:00", "end": "08:00"}
    sleeper = await member(
        acme.client, "Sleeper", telegram_user_id=901, timezone="Europe/Moscow", quiet_hours=night
    )
    owl = await member(acme.client, "Owl", telegram_user_id=902, timezone="Europe/Moscow")
    audience = {"members": [sleeper["id"], owl["id"]]}
    # Reminder due 01:00 Moscow time for a 13:00 meeting: the sleeper gets it at 08:00.
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Lunch talk",
                "starts_at": "2026-12-10T10:00:00Z",
                "audience": audience,
                "reminder_offsets": [720],
            },
        ),
        201,
    )
    assert await run_due(engine, telegram, datetime(2026, 12, 9, 22, 0, tzinfo=UTC)) == {
        "sent": 1,
        "deferred": 1,
    }
    assert [m.chat_id for m in emulator.messages] == [902]
    sessions = make_sessionmaker(engine)
    early = await retry_deferred(
        sessions, [telegram], KEY, Clock(datetime(2026, 12, 10, 4, 59, tzinfo=UTC))
    )
    assert early.outcomes == {}
    morning = await retry_deferred(
        sessions, [telegram], KEY, Clock(datetime(2026, 12, 10, 5, 0, tzinfo=UTC))
    )
    assert morning.outcomes == {"sent": 1}
    assert [m.chat_id for m in emulator.messages] == [902, 901]

    # A reminder that would be useless after 08:00 (the meeting is at 07:00) goes at once.
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Early call",
                "starts_at": "2026-12-11T04:00:00Z",
                "audience": audience,
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    assert await run_due(engine, telegram, datetime(2026, 12, 11, 3, 0, tzinfo=UTC)) == {"sent": 2}


async def test_a_long_job_keeps_its_lease_while_it_is_being_sent(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    """A big broadcast outlasting its lease is not handed to a second worker meanwhile."""
    people = [await member(acme.client, f"P{i:02}", telegram_user_id=950 + i) for i in range(48)]
    starts = utcnow() + timedelta(minutes=60, seconds=2)
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "All hands",
                "starts_at": starts.isoformat(),
                "audience": {"members": [p["id"] for p in people]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    lease = timedelta(seconds=0.6)
    sessions = make_sessionmaker(engine)
    await asyncio.sleep(2.1)  # due now
    async with sessions() as session:
        [job] = await claim_due_jobs(session, "w", utcnow(), lease=lease)
        await session.commit()
    emulator.delay = 0.3  # three batches of 16: about a second, longer than the lease
    sending = asyncio.create_task(
        dispatch_job(sessions, job.id, [telegram], KEY, lambda: utcnow(), lease)
    )
    stolen = []
    while not sending.done():
        async with sessions() as session:
            stolen += await claim_due_jobs(session, "thief", utcnow(), lease=lease)
            await session.commit()
        await asyncio.sleep(0.1)
    assert (await sending).outcomes == {"sent": 48}
    assert stolen == []
    assert len(emulator.messages) == 48


async def test_a_workspace_daily_limit_holds_the_rest_until_the_next_utc_day(
    acme: Workspace,
    globex: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    people = [await member(acme.client, f"P{i}", telegram_user_id=300 + i) for i in range(3)]
    team = await group(acme.client, "Team", *people)
    outsider = await member(globex.client, "G", telegram_user_id=399)
    other = await group(globex.client, "Team", outsider)
    await ok(acme.client.patch("/workspace", json={"daily_limit": 2}))
    for ws, audience in ((acme, team), (globex, other)):
        await ok(
            ws.client.post(
                "/events",
                json={
                    "title": "Planning",
                    "starts_at": "2026-12-12T09:00:00Z",
                    "audience": {"groups": [audience["id"]]},
                    "reminder_offsets": [42 * 60],  # due 2026-12-10 15:00
                },
            ),
            201,
        )
    at = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    assert await run_due(engine, telegram, at) == {"sent": 3, "deferred": 1}  # 2 + globex's 1
    held = await ok(acme.client.get("/workspace"))
    assert held["daily_limit"] == 2
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        waiting = (
            await session.execute(
                select(Delivery.last_error, Delivery.next_attempt_at).where(
                    Delivery.status == "deferred"
                )
            )
        ).all()
    assert waiting == [("daily limit", datetime(2026, 12, 11, tzinfo=UTC))]
    early = await retry_deferred(sessions, [telegram], KEY, Clock(at + timedelta(hours=8)))
    assert early.outcomes == {}
    next_day = await retry_deferred(sessions, [telegram], KEY, Clock(at + timedelta(hours=9)))
    assert next_day.outcomes == {"sent": 1}
    assert sum(len(emulator.sent_to(300 + i)) for i in range(3)) == 3


async def test_a_workspace_rate_limit_paces_its_own_sends(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    redis_url: str,
):
    people = [await member(acme.client, f"P{i}", telegram_user_id=310 + i) for i in range(4)]
    team = await group(acme.client, "Team", *people)
    await ok(acme.client.patch("/workspace", json={"rate_per_second": 2.5}))
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Planning",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    sessions = make_sessionmaker(engine)
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    async with sessions() as session:
        jobs = await claim_due_jobs(session, "test", at)
        await session.commit()
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        limiter = RateLimiter(redis)
        report = await dispatch_job(
            sessions, jobs[0].id, [telegram], KEY, Clock(at), limiter=limiter
        )
    finally:
        await redis.aclose()
    assert report.outcomes == {"sent": 4}
    # Telegram would take 30 a second; the workspace's owner allowed 2.5.
    arrivals = sorted(m.sent_at for m in emulator.messages)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 3 and min(gaps) >= 0.35, gaps


async def test_a_messenger_outage_is_ridden_out_with_growing_waits(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    """Telegram down (502s) for six attempts, over a minute: the message waits longer after each
    failure and still arrives once, rather than failing after a few fixed short waits."""
    anna = await member(acme.client, "Anna", telegram_user_id=531)
    await _sync_an_hour_ahead(acme, anna)
    emulator.outage(6)
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    assert await run_due(engine, telegram, at) == {"retry": 1}
    sessions = make_sessionmaker(engine)
    waits: list[float] = []
    for _ in range(10):
        async with sessions() as session:
            row = await session.scalar(select(Delivery).where(Delivery.member_id == anna["id"]))
        assert row is not None
        if row.status != "deferred":
            break
        assert row.next_attempt_at is not None
        waits.append((row.next_attempt_at - at).total_seconds())
        # Just before its time nothing is sent; at its time it is tried again.
        early = await retry_deferred(
            sessions, [telegram], KEY, Clock(row.next_attempt_at - timedelta(milliseconds=1))
        )
        assert early.outcomes == {}
        at = row.next_attempt_at
        await retry_deferred(sessions, [telegram], KEY, Clock(at))
    assert row.status == "sent" and row.attempts == 7
    assert emulator.server_errors == 6 and len(emulator.sent_to(531)) == 1
    assert len(waits) == 6
    # Each wait is drawn from the upper half of a doubling one (2 s, 4 s, … : core.delivery.retries).
    for n, wait in enumerate(waits, start=1):
        full = 2.0 * 2 ** (n - 1)
        assert full / 2 - 0.01 <= wait <= full + 0.01, (n, waits)
    assert sum(waits) > 60


async def test_an_outage_longer_than_every_attempt_fails_the_message_with_the_reason(
    acme: Workspace, engine: AsyncEngine, emulator: BotApiEmulator, telegram: TelegramChannel
):
    anna = await member(acme.client, "Anna", telegram_user_id=532)
    await _sync_an_hour_ahead(acme, anna)
    emulator.outage(100)
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    await run_due(engine, telegram, at)
    sessions = make_sessionmaker(engine)
    for _ in range(MAX_ATTEMPTS + 2):
        at += timedelta(minutes=6)  # past the longest wait (5 min)
        await retry_deferred(sessions, [telegram], KEY, Clock(at))
    async with sessions() as session:
        row = await session.scalar(select(Delivery).where(Delivery.member_id == anna["id"]))
    assert row is not None and row.status == "failed"
    assert row.last_error == f"gave up after {MAX_ATTEMPTS} attempts"
    assert emulator.server_errors == MAX_ATTEMPTS and emulator.sent_to(532) == []


async def test_a_channel_opens_a_connection_before_a_batch_after_a_pause_never_while_busy(
    emulator: BotApiEmulator, telegram: TelegramChannel
):
    """A fan-out's first request on a cold connection (TCP, TLS) arrives late and bunched with
    the next, and Telegram counts its limit where messages arrive. So the dispatcher warms the
    channel before a batch takes its slots, which costs a request only after a pause."""
    before = emulator.requests
    await telegram.warm()  # never used yet: a cheap call (getMe) opens the connection
    assert emulator.requests == before + 1
    busy = Warmth(telegram.bot.get_me, within=3600.0)
    await busy.warm()
    busy.used()  # as every send does
    await busy.warm()
    assert emulator.requests == before + 2  # used a moment ago: nothing asked
    paused = Warmth(telegram.bot.get_me, within=0.0)
    paused.used()
    await paused.warm()
    assert emulator.requests == before + 3
    # A service that cannot be reached is left for the send to report, not raised here.
    unreachable = make_bot("123456:TEST", f"http://127.0.0.1:{free_port()}")
    try:
        await Warmth(unreachable.get_me).warm()
    finally:
        await unreachable.session.close()
