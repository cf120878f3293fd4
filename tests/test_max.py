"""MAX beside Telegram, through the MAX emulator over real HTTP: the emulator is as strict as MAX's
docs (token only in the header, 2 a second per chat, UTF-16 text length, keyboard limits,
chat.denied); an invite joins a MAX user; a confirmation request reaches them with buttons, their
press is recorded (and a forwarded one refused); a mixed team answers one event and the board and
the statistics count both messengers; a member on both gets each message once, on the one they
chose, and on the other when that one stops reaching them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from bot.max_bot import MaxBot, run_max_bot
from core.db import make_sessionmaker
from core.delivery.channels import Channel
from core.delivery.models import ChannelBlock
from core.settings import Settings
from core.teams.accounts import set_account
from core.teams.models import Member, Messenger
from emulators.max import MaxApiEmulator, chat_of
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace
from tests.factories import member, ok, role_id
from tests.test_dispatch import KEY
from tests.test_email import run_due
from tests.webapp_helpers import init_data
from worker.channels import TelegramChannel
from worker.max_api import MaxClient, MaxError, keyboard
from worker.max_channel import MaxChannel

TOKEN = "max-test-token"
ANNA = {"user_id": 4101, "name": "Анна"}
BORIS = {"user_id": 4102, "name": "Boris"}


@pytest.fixture
async def max_emulator() -> AsyncIterator[MaxApiEmulator]:
    server = MaxApiEmulator(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def max_client(max_emulator: MaxApiEmulator) -> AsyncIterator[MaxClient]:
    client = MaxClient(TOKEN, max_emulator.base_url)
    yield client
    await client.close()


@pytest.fixture
async def max_bot(
    engine: AsyncEngine, max_client: MaxClient, telegram: TelegramChannel
) -> AsyncIterator[None]:
    """The MAX bot, long-polling the emulator, with the worker's channels."""
    channels: list[Channel] = [MaxChannel(max_client, "test"), telegram]
    bot = MaxBot(max_client, make_sessionmaker(engine), KEY, channels)
    stop = asyncio.Event()
    task = asyncio.create_task(run_max_bot(max_client, bot, stop))
    yield
    stop.set()
    await task


async def _until(condition: Any, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the MAX bot"
        await asyncio.sleep(0.05)


async def test_stopping_the_bot_abandons_its_long_poll(
    engine: AsyncEngine,
    max_emulator: MaxApiEmulator,
    max_client: MaxClient,
    telegram: TelegramChannel,
):
    """Ctrl-C on `vestnik run` waited for the MAX bot's long poll to end. A poll abandoned loses
    nothing: updates are handed out after a marker, so the next poll asks for them again."""
    bot = MaxBot(max_client, make_sessionmaker(engine), KEY, [MaxChannel(max_client, "t")])
    stop = asyncio.Event()
    before = max_emulator.requests
    task = asyncio.create_task(run_max_bot(max_client, bot, stop, poll_seconds=60))
    await _until(lambda: max_emulator.requests > before)  # the poll is waiting for updates
    stop.set()
    await asyncio.wait_for(task, timeout=30)  # the poll alone would take 60 s


async def test_the_emulator_is_as_strict_as_max(
    max_emulator: MaxApiEmulator, max_client: MaxClient
):
    async with httpx.AsyncClient() as raw:
        in_query = await raw.get(f"{max_emulator.base_url}/me", params={"access_token": TOKEN})
        assert in_query.status_code == 403 and in_query.json()["code"] == "deprecated.token"
        bearer = await raw.get(
            f"{max_emulator.base_url}/me", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert bearer.status_code == 401 and bearer.json()["code"] == "verify.token"
    with pytest.raises(MaxError) as denied:
        await max_client.send("hi", user_id=999)  # never started the bot
    assert (denied.value.status, denied.value.code) == (403, "chat.denied")
    max_emulator.started.add(1)
    with pytest.raises(MaxError) as long_text:
        await max_client.send("😀" * 2001, user_id=1)  # 4,002 UTF-16 units
    assert long_text.value.code == "proto.payload"
    await max_client.send("😀" * 2000, user_id=1)  # exactly 4,000: allowed
    too_wide = keyboard([(str(i), f"p{i}") for i in range(8)])
    with pytest.raises(MaxError):
        await max_client.send("x", user_id=1, attachments=too_wide)
    with pytest.raises(MaxError) as flood:  # 2 a second per chat
        for _ in range(3):
            await max_client.send("fast", user_id=1)
    assert (flood.value.status, flood.value.code) == (429, "too.many.requests")
    [sent] = [m for m in max_emulator.sent_to(1) if m.text == "😀" * 2000]
    await asyncio.sleep(1.1)
    await max_client.edit(sent.mid, "edited", [])
    assert sent.text == "edited" and sent.keyboard is None


async def test_a_max_user_joins_by_invite_and_answers_a_request_with_a_tap(
    acme: Workspace,
    engine: AsyncEngine,
    max_emulator: MaxApiEmulator,
    max_client: MaxClient,
    max_bot: None,
):
    made = await member(acme.client, "Anna", locale="ru")
    invite = await ok(acme.client.post("/invites", json={"member_id": made["id"]}), 201)
    max_emulator.user_starts(ANNA, payload=invite["token"])
    await _until(lambda: len(max_emulator.sent_to(ANNA["user_id"])) == 2)
    greeting, question = max_emulator.sent_to(ANNA["user_id"])
    assert "Acme" in greeting.text and "часовом поясе" in question.text
    assert [b["text"] for b in question.buttons] == ["Оставить Europe/Moscow"]
    max_emulator.user_sends(ANNA, "Берлин")  # the answer to the question, in her own words
    await _until(lambda: len(max_emulator.sent_to(ANNA["user_id"])) == 3)
    assert max_emulator.sent_to(ANNA["user_id"])[-1].text.startswith("Часовой пояс: Europe/Berlin")
    [anna] = (await ok(acme.client.get("/members")))["items"]
    assert [a["messenger"] for a in anna["accounts"]] == ["max"]
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
    channel = MaxChannel(max_client, "test")
    # Her chat's 2-a-second allowance at MAX went on the bot's replies just now (they do not go
    # through the engine's limiter): the request comes in the next second.
    await asyncio.sleep(1.1)
    assert await run_due(engine, [channel], KEY, datetime(2026, 12, 9, 7, 0, tzinfo=UTC)) == {
        "sent": 1
    }
    request = max_emulator.sent_to(ANNA["user_id"])[-1]
    assert request.chat_id == chat_of(ANNA["user_id"])  # her dialog, learnt when she started
    labels = [b["text"] for b in request.buttons]
    assert labels == ["Иду", "Не иду", "Возможно"]
    going = request.buttons[0]["payload"]

    max_emulator.user_presses(BORIS, request, going)  # a forwarded message, pressed by another
    await _until(lambda: len(max_emulator.callback_answers) == 1)
    assert "другому" in max_emulator.callback_answers[0]["notification"]
    max_emulator.user_presses(ANNA, request, going)
    await _until(lambda: len(max_emulator.callback_answers) == 2)
    assert max_emulator.callback_answers[1]["notification"] == "Сохранено"
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["going"]] == ["Anna"]
    await _until(lambda: "✓" in request.text)
    assert request.text.endswith("✓ Ваш ответ: Иду") and request.keyboard  # still changeable

    max_emulator.user_sends(ANNA, "/events")
    await _until(lambda: max_emulator.sent_to(ANNA["user_id"])[-1].text != request.text)
    assert "Offsite" in max_emulator.sent_to(ANNA["user_id"])[-1].text


async def test_a_mixed_team_answers_one_event_and_each_gets_it_once_on_their_messenger(
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    max_emulator: MaxApiEmulator,
    max_client: MaxClient,
    max_bot: None,
):
    tg = await member(acme.client, "Tanya", telegram_user_id=4201)
    boris = await member(acme.client, "Boris")
    both = await member(acme.client, "Both")
    for user, who in ((BORIS, boris), ({"user_id": 4203, "name": "Both"}, both)):
        invite = await ok(acme.client.post("/invites", json={"member_id": who["id"]}), 201)
        max_emulator.user_starts(user, payload=invite["token"], locale="en")
        await _until(lambda u=user: max_emulator.sent_to(u["user_id"]))
    # "Both" is on Telegram too (the owner links the account).
    await ok(acme.client.patch(f"/members/{both['id']}", json={"telegram_user_id": 4203}))
    emulator.introduce(4201, 4203)
    # The bot's greeting and time-zone question used the chats' 2-a-second allowance at MAX;
    # the request comes in the next second, as it would at least that long after joining.
    await asyncio.sleep(1.1)
    # "Both" joined on MAX first, so MAX is theirs until they choose; they choose it anyway.
    await ok(acme.client.patch(f"/members/{both['id']}", json={"preferred_messenger": "max"}))
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"members": [tg["id"], boris["id"], both["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    channels: list[Channel] = [telegram, MaxChannel(max_client, "test")]
    assert await run_due(engine, channels, KEY, datetime(2026, 12, 9, 7, 0, tzinfo=UTC)) == {
        "sent": 3
    }
    assert len(emulator.sent_to(4201)) == 1 and emulator.sent_to(4203) == []
    to_both = [m for m in max_emulator.sent_to(4203) if "Sync" in m.text]
    assert len(to_both) == 1  # on the one they chose, once

    await ok(
        acme.client.put(f"/events/{event['id']}/confirmations/{tg['id']}", json={"answer": "going"})
    )
    request = next(m for m in max_emulator.sent_to(BORIS["user_id"]) if "Sync" in m.text)
    max_emulator.user_presses(BORIS, request, request.buttons[1]["payload"])
    await _until(lambda: any(a["notification"] == "Saved" for a in max_emulator.callback_answers))
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["going"]] == ["Tanya"]
    assert [p["name"] for p in board["not_going"]] == ["Boris"]
    stats = await ok(acme.client.get(f"/events/{event['id']}/stats"))
    assert stats["deliveries"]["sent_by_channel"] == {"max": 2, "telegram": 1}

    # "Both" stops the MAX bot: their next message comes on Telegram instead.
    max_emulator.user_stops({"user_id": 4203, "name": "Both"})
    sessions = make_sessionmaker(engine)

    async def blocked() -> bool:
        async with sessions() as session:
            found = await session.scalar(
                select(ChannelBlock.member_id).where(
                    ChannelBlock.member_id == uuid.UUID(both["id"]), ChannelBlock.channel == "max"
                )
            )
        return found is not None

    deadline = asyncio.get_running_loop().time() + 15
    while not await blocked():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await ok(
        acme.client.post(
            "/broadcasts", json={"text": "Room changed", "audience": {"members": [both["id"]]}}
        ),
        201,
    )
    await run_due(engine, channels, KEY, datetime(2026, 12, 9, 8, 0, tzinfo=UTC))
    assert [m.text for m in emulator.sent_to(4203)] == ["Room changed"]


@pytest.fixture
async def max_site(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(update={"max_token": SecretStr(TOKEN)})
    app = create_app(configured)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
        ) as client,
    ):
        yield client


async def test_the_mini_app_signs_in_with_max_init_data_and_refuses_forgeries(
    acme: Workspace, engine: AsyncEngine, max_site: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna")
    async with make_sessionmaker(engine)() as session:
        found = await session.get_one(Member, uuid.UUID(anna["id"]))
        set_account(found, Messenger.max, "4101")
        await session.commit()
    user = {"id": 4101, "first_name": "Anna", "language_code": "en"}
    forged = init_data(user, token="someone else's token")
    assert (await max_site.post("/app/auth/max", data={"init_data": forged})).status_code == 401
    stale = init_data(user, token=TOKEN, age_seconds=2 * 24 * 3600)
    assert (await max_site.post("/app/auth/max", data={"init_data": stale})).status_code == 401
    tampered = init_data(user, token=TOKEN).replace("4101", "4102")
    assert (await max_site.post("/app/auth/max", data={"init_data": tampered})).status_code == 401
    stranger = init_data({"id": 999, "first_name": "X"}, token=TOKEN)
    assert (await max_site.post("/app/auth/max", data={"init_data": stranger})).status_code == 403
    # A Telegram user with the same number is not this MAX user.
    signed = await max_site.post("/app/auth/max", data={"init_data": init_data(user, token=TOKEN)})
    assert signed.status_code == 204
    page = await max_site.get("/app")
    assert page.status_code == 200 and "My events" in page.text
    # Signed in from MAX, every page loads MAX's bridge and wears MAX's colours.
    assert 'data-messenger="max"' in page.text and "st.max.ru/js/max-web-app.js" in page.text
    async with httpx.AsyncClient(
        transport=max_site._transport, base_url="http://vestnik.test"
    ) as fresh:
        signin = await fresh.get("/app?platform=max")
        assert "https://st.max.ru/js/max-web-app.js" in signin.text  # MAX's bridge, inside MAX
        plain = await fresh.get("/app")  # opened in Telegram (or a browser)
        assert "max-web-app.js" not in plain.text and 'data-messenger="telegram"' in plain.text


async def test_the_max_webhook_takes_updates_only_with_its_secret(
    acme: Workspace, settings: Settings, max_emulator: MaxApiEmulator
):
    configured = settings.model_copy(
        update={
            "max_token": SecretStr(TOKEN),
            "max_api_url": max_emulator.base_url,
            "max_webhook_url": "https://vestnik.example/max/webhook",
        }
    )
    app = create_app(configured)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as site,
    ):
        assert max_emulator.webhook_url == "https://vestnik.example/max/webhook"
        secret = max_emulator.webhook_secret
        assert secret == configured.max_webhook_secret
        made = await member(acme.client, "Anna")
        invite = await ok(acme.client.post("/invites", json={"member_id": made["id"]}), 201)
        max_emulator.started.add(ANNA["user_id"])
        update = {
            "update_type": "bot_started",
            "timestamp": 0,
            "chat_id": chat_of(ANNA["user_id"]),
            "user": {"user_id": ANNA["user_id"], "name": "Анна"},
            "payload": invite["token"],
        }
        for wrong in ({}, {"X-Max-Bot-Api-Secret": "guess"}):
            refused = await site.post("/max/webhook", json=update, headers=wrong)
            assert refused.status_code == 401
        assert max_emulator.sent_to(ANNA["user_id"]) == []
        taken = await site.post(
            "/max/webhook", json=update, headers={"X-Max-Bot-Api-Secret": secret}
        )
        assert taken.status_code == 200
        await _until(lambda: len(max_emulator.sent_to(ANNA["user_id"])) == 2)  # hello, zone?
        for _ in range(100):  # the update's transaction commits once its handler is done
            accounts = (await ok(acme.client.get(f"/members/{made['id']}")))["accounts"]
            if accounts:
                break
            await asyncio.sleep(0.05)
        assert accounts == [{"messenger": "max", "external_id": str(ANNA["user_id"])}]


async def test_max_members_use_the_same_commands(
    acme: Workspace,
    max_emulator: MaxApiEmulator,
    max_bot: None,
):
    made = await member(acme.client, "Boris", timezone="Europe/Berlin")
    invite = await ok(acme.client.post("/invites", json={"member_id": made["id"]}), 201)
    max_emulator.user_starts(BORIS, payload=invite["token"], locale="en")
    await _until(lambda: max_emulator.sent_to(BORIS["user_id"]))
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Retro",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"members": [made["id"]]},
            },
        ),
        201,
    )

    async def say(text: str) -> str:
        seen = len(max_emulator.sent_to(BORIS["user_id"]))
        max_emulator.user_sends(BORIS, text, locale="en")
        await _until(lambda: len(max_emulator.sent_to(BORIS["user_id"])) > seen)
        return max_emulator.sent_to(BORIS["user_id"])[-1].text

    assert "Retro" in await say("/next")
    assert "/events" in await say("/help")
    first = await say("/calendar")
    assert "/ics/" in first
    again = await say("/calendar")  # shown once; a new one replaces it, by a button
    [offer] = [m for m in max_emulator.sent_to(BORIS["user_id"]) if m.text == again]
    max_emulator.user_presses(BORIS, offer, offer.buttons[0]["payload"], locale="en")
    await _until(
        lambda: (
            "/ics/" in max_emulator.sent_to(BORIS["user_id"])[-1].text
            and max_emulator.sent_to(BORIS["user_id"])[-1].text != first
        )
    )
    assert "I do not know that command" in await say("/nonsense")
    assert "lead" in (await say("/who Retro")).lower()  # members are refused
    await ok(
        acme.client.patch(
            f"/members/{made['id']}", json={"role_ids": [await role_id(acme.client, "lead")]}
        )
    )
    board = await say("/who Retro")
    assert "Retro" in board and "Boris" in board


def test_an_empty_token_in_the_environment_is_no_token(monkeypatch: pytest.MonkeyPatch):
    """docker-compose.yml passes `${VESTNIK_MAX_TOKEN:-}`: empty must not start a bot."""
    monkeypatch.setenv("VESTNIK_MAX_TOKEN", "")
    monkeypatch.setenv("VESTNIK_TELEGRAM_TOKEN", "")
    found = Settings()
    assert found.max_token is None and found.telegram_token is None
