"""A member presses Going under a confirmation request: the bot records it, over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_sessionmaker
from core.notify.answers import ButtonVerdict, record_button_answer
from core.teams.accounts import Person
from core.teams.models import Messenger
from tests.chats import Said, Talk
from tests.conftest import Workspace
from tests.factories import member, ok
from tests.test_dispatch import KEY, run_due
from worker.channels import make_bot

ANNA = {"id": 301, "first_name": "Anna", "language_code": "en"}
STRANGER = {"id": 999, "first_name": "Someone", "language_code": "en"}


async def _request_sent(acme: Workspace, engine: AsyncEngine, talk: Talk) -> tuple[dict, Said]:
    """Anna (who has opened the bot) gets a confirmation request; the event and the request."""
    anna = await member(acme.client, "Anna", **talk.account(ANNA))
    await talk.chat(ANNA).send("/start")
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"members": [anna["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    sender = make_bot("123456:TEST", talk.telegram.base_url)
    try:
        await run_due(engine, talk.channel(sender), datetime(2026, 12, 9, 7, 0, tzinfo=UTC))
    finally:
        await sender.session.close()
    [request] = [m for m in talk.sent_to(ANNA) if m.buttons]
    return event, request


async def _board(acme: Workspace, event: dict) -> dict:
    return await ok(acme.client.get(f"/events/{event['id']}/confirmations"))  # type: ignore[no-any-return]


async def _until(condition, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_pressing_going_records_the_answer_and_edits_the_message(
    acme: Workspace, engine: AsyncEngine, talk: Talk
):
    event, request = await _request_sent(acme, engine, talk)
    anna = talk.chat(ANNA)
    await anna.press(request, "Going")

    async def recorded() -> bool:
        return (await _board(acme, event))["counts"]["going"] == 1

    await _until(recorded)
    assert [p["name"] for p in (await _board(acme, event))["going"]] == ["Anna"]

    async def edited() -> bool:
        return request.text.endswith("✓ Your answer: Going")

    await _until(edited)
    assert [label for label, _ in request.buttons] == ["Going", "Not going", "Maybe"]  # kept
    # Pressing Going again changes nothing: the message is not edited to the text it has (real
    # Telegram refuses that with "message is not modified"), and the press is still answered.
    notices = len(talk.notices())
    await anna.press(request, "Going")

    async def answered_again() -> bool:
        return len(talk.notices()) > notices

    await _until(answered_again)
    assert request.raw.edits == [request.raw.edits[0]]
    assert talk.refusals() == []
    # Changing one's mind before the deadline is fine.
    await anna.press(request, "Not going")

    async def changed() -> bool:
        return (await _board(acme, event))["counts"]["not_going"] == 1

    await _until(changed)


async def test_a_forwarded_or_forged_button_changes_nothing(
    acme: Workspace, engine: AsyncEngine, talk: Talk
):
    event, request = await _request_sent(acme, engine, talk)
    going = request.buttons[0][1]
    await talk.chat(STRANGER).press_data(request, going)  # someone Anna forwarded it to
    await talk.chat(ANNA).press_data(request, going[:-3] + "AAA")  # tampered data
    await asyncio.sleep(1)
    assert (await _board(acme, event))["counts"] == {
        "going": 0,
        "not_going": 0,
        "maybe": 0,
        "silent": 1,
    }
    assert request.raw.edits == []
    assert talk.notices()[-2].startswith("This message was sent to someone else")


async def test_answers_close_at_the_deadline(acme: Workspace, engine: AsyncEngine, talk: Talk):
    _, request = await _request_sent(acme, engine, talk)
    going = request.buttons[0][1]
    person = Person(Messenger(talk.messenger), "301")
    async with make_sessionmaker(engine)() as session:
        late = await record_button_answer(
            session, KEY, going, person, datetime(2026, 12, 10, 7, 1, tzinfo=UTC)
        )
        in_time = await record_button_answer(
            session, KEY, going, person, datetime(2026, 12, 10, 6, 59, tzinfo=UTC)
        )
        await session.commit()
    assert (late.verdict, in_time.verdict) == (ButtonVerdict.closed, ButtonVerdict.recorded)
