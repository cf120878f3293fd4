"""No input can stall the API: while the heaviest work any input may ask for is under way, the
health check still answers promptly."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import Workspace
from tests.factories import member, ok

# Each asks for as much as vestnik allows: a 4,000-character template of filters, a rule whose
# first date has to be searched for (and is never found), a year of a daily series, a 1 MiB body.
HEAVY_TEMPLATE = "{{ member.name|upper|lower|title|trim }}" * 97  # 3,977 characters
NEVER = "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2"


async def test_health_answers_within_a_second_while_the_heaviest_inputs_run(acme: Workspace, app):
    anna = await member(acme.client, "Anna")
    daily = await ok(
        acme.client.post(
            "/events",
            json={"title": "Daily", "starts_at": "2026-12-01T09:00", "rrule": "FREQ=DAILY"},
        ),
        201,
    )
    year = {"from": "2026-12-01T00:00:00Z", "to": "2027-12-01T00:00:00Z"}

    async def heavy() -> list[int]:
        answers = await asyncio.gather(
            acme.client.post(
                "/templates/preview", json={"text": HEAVY_TEMPLATE, "member_id": anna["id"]}
            ),
            acme.client.post(
                "/events", json={"title": "Never", "starts_at": "2026-12-07T10:00", "rrule": NEVER}
            ),
            acme.client.get(f"/events/{daily['id']}/occurrences", params=year),
            acme.client.post("/members", json={"name": "x" * (1_048_576 - 20)}),
            *(acme.client.post("/audience/preview", json={}) for _ in range(5)),
        )
        return [a.status_code for a in answers]

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
    ) as probe:
        work = asyncio.create_task(heavy())
        slowest = 0.0
        while not work.done():
            asked = time.monotonic()
            health = await asyncio.wait_for(probe.get("/healthz"), 10)
            assert health.status_code == 200
            slowest = max(slowest, time.monotonic() - asked)
            await asyncio.sleep(0.02)
        statuses = await work
    # The template renders; the rule is refused; the year expands; the name is too long.
    assert statuses == [200, 422, 200, 422] + [200] * 5, statuses
    assert slowest < 1.0, f"/healthz took {slowest:.2f} s while the heavy inputs ran"
