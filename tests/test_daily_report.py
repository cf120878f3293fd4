"""The leads' daily report: at each lead's own local time, once per day however many schedulers
plan it, through the engine to the bot (real HTTP to the emulator), with the figures the
statistics API gives for the same day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.insights.daily_report import plan_daily_reports
from core.journeys.runner import advance_due
from emulators.telegram import BotApiEmulator
from tests.conftest import MovableClock, Workspace
from tests.factories import member, ok, role_id, tag
from tests.test_dispatch import run_due
from worker.channels import TelegramChannel

PUBLIC = "http://127.0.0.1:8000"


async def _plan(engine: AsyncEngine) -> int:
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        made = await plan_daily_reports(session, utcnow(), PUBLIC)
        await session.commit()
    return made


async def test_a_lead_gets_yesterdays_figures_once_at_their_morning(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    clock: MovableClock,
):
    lead = await role_id(acme.client, "lead")
    await member(
        acme.client, "Lena", telegram_user_id=3101, timezone="Europe/Berlin", role_ids=[lead]
    )
    await member(acme.client, "Plain", telegram_user_id=3102)  # not a lead: no report
    anna = await member(acme.client, "Anna", telegram_user_id=3103, external_id="crm-1")
    await member(acme.client, "Boris", telegram_user_id=3104)
    buyer = await tag(acme.client, "buyer")
    journey = await ok(
        acme.client.post(
            "/journeys",
            json={
                "name": "Thanks",
                "trigger": {"type": "tag_added", "tag_id": buyer["id"]},
                "steps": [
                    {
                        "key": "thank",
                        "title": "Thank",
                        "type": "send",
                        "message": {"text": "Thank you!"},
                    },
                    {"key": "later", "title": "Later", "type": "wait", "minutes": 1440},
                ],
            },
        ),
        201,
    )
    await ok(acme.client.post(f"/journeys/{journey['id']}/activate"))
    # Tuesday 24 November (UTC): a purchase, its journey, its message.
    for _ in range(2):
        await ok(acme.client.post("/signals", json={"external_id": "crm-1", "name": "bought"}), 201)
    await ok(
        acme.client.post(f"/tags/{buyer['id']}/members/add", json={"member_ids": [anna["id"]]})
    )
    await advance_due(make_sessionmaker(engine), "test", utcnow)
    await run_due(engine, telegram, utcnow() + timedelta(seconds=5))
    assert [m.text for m in emulator.sent_to(3103)] == ["Thank you!"]

    # 08:59 in Berlin on the 25th: not yet. 09:00:30: two schedulers at once make one report.
    clock.set(datetime(2026, 11, 25, 7, 59, 0, tzinfo=UTC))
    assert await _plan(engine) == 0
    clock.set(datetime(2026, 11, 25, 8, 0, 30, tzinfo=UTC))
    assert sum(await asyncio.gather(_plan(engine), _plan(engine))) == 1
    assert await _plan(engine) == 0
    await run_due(engine, telegram, utcnow())
    [report] = emulator.sent_to(3101)
    assert emulator.sent_to(3102) == []

    stats = await ok(
        acme.client.get("/stats/days", params={"since": "2026-11-24", "until": "2026-11-24"})
    )
    [day] = stats["days"]
    figures = await ok(acme.client.get(f"/journeys/{journey['id']}/stats"))
    [entered] = [d["entered"] for d in figures["days"] if d["day"] == "2026-11-24"]
    reached = {d["key"]: d["reached"] for d in figures["step_days"] if d["day"] == "2026-11-24"}
    lines = report.text.splitlines()
    assert lines[0] == "vestnik — 24 Nov 2026 (UTC)"
    members = stats["members"]
    assert lines[1] == (
        f"Members: +{day['new_members']} new, {day['unsubscribed']} unsubscribed, "
        f"{day['blocked']} newly unreachable; now {members['active']} active, "
        f"{members['unsubscribed'] + members['unreachable']} inactive."
    )
    sent = sum(day["sent"].values())
    assert sent == 1 and lines[2] == f"Messages sent: {sent}; 0 failed."
    assert lines[3] == "Signals: bought 2."
    assert lines[4] == (
        f"“Thanks”: {entered} entered, 0 finished: Thank {reached['thank']}, Later {reached['later']}"
    )
    assert lines[5] == f"Open statistics: {PUBLIC}/app/stats"

    # The next morning, again once; a lead who turned it off gets none.
    clock.set(datetime(2026, 11, 26, 8, 1, tzinfo=UTC))
    assert await _plan(engine) == 1
    await ok(
        acme.client.patch(f"/members/{(await _lena(acme))['id']}", json={"daily_report_at": None})
    )
    clock.set(datetime(2026, 11, 27, 8, 1, tzinfo=UTC))
    assert await _plan(engine) == 0


async def _lena(acme: Workspace) -> dict[str, object]:
    found = await ok(acme.client.get("/members", params={"q": "Lena"}))
    return found["items"][0]  # type: ignore[no-any-return]
