"""The bot, driven the way each messenger drives it: updates over HTTP from the Telegram Bot API
emulator to `run_bot`'s Dispatcher, or from the MAX emulator through the MAX adapter to the same
Dispatcher; replies asserted on what the emulator received and on the database. Every test that
talks to the bot runs once per messenger (``talk``, tests/chats.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import icalendar
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from bot.app import run_bot
from core.clock import utcnow
from core.db import make_sessionmaker
from core.delivery.models import ChannelBlock
from core.settings import Settings
from core.teams.models import Invite
from emulators.telegram import BotApiEmulator
from tests.chats import Talk, until
from tests.conftest import Workspace, free_port
from tests.factories import group, member, ok, tag
from tests.test_dispatch import KEY, run_due
from worker.channels import make_bot

ANNA = {"id": 2001, "first_name": "Анна", "last_name": "Смирнова", "language_code": "ru"}
BORIS = {"id": 2002, "first_name": "Boris", "language_code": "en"}
CARL = {"id": 2003, "first_name": "Carl", "last_name": "Jung", "language_code": "en-GB"}
DASHA = {"id": 2004, "first_name": "Даша", "language_code": "ru"}
LENA = {"id": 2005, "first_name": "Lena", "language_code": "en"}
OTTO = {"id": 2006, "first_name": "Otto", "language_code": "de"}


async def _until(condition: Any, seconds: float = 15) -> None:
    await until(condition, seconds)


async def _lead(ws: Workspace, name: str, user: dict[str, Any], talk: Talk) -> dict[str, Any]:
    role = next(r for r in await ok(ws.client.get("/roles")) if r["name"] == "lead")
    return await member(ws.client, name, role_ids=[role["id"]], **talk.account(user))


async def test_a_personal_invite_links_anna_greets_her_in_russian_and_asks_her_zone(
    acme: Workspace, talk: Talk
):
    anna = await member(acme.client, "Анна Смирнова", locale="ru")
    invite = await ok(acme.client.post("/invites", json={"member_id": anna["id"]}), 201)
    if not talk.on_max:
        assert invite["link"] == f"https://t.me/vestnik_emulator_bot?start={invite['token']}"
    chat = talk.chat(ANNA)

    greeting, question = await chat.send(f"/start {invite['token']}", replies=2)
    assert greeting.text == "Здравствуйте, Анна Смирнова! Теперь вы в команде «Acme»."
    assert "В каком вы часовом поясе?" in question.text
    linked = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert linked[f"{talk.messenger}_user_id"] == ANNA["id"]

    [done] = await chat.send("Екатеринбург")
    assert done.text.startswith("Часовой пояс: Asia/Yekaterinburg.")
    assert (await ok(acme.client.get(f"/members/{anna['id']}")))["timezone"] == "Asia/Yekaterinburg"
    [state] = await ok(acme.client.get("/invites"))
    assert state["state"] == "used"

    # Using it again from her own account is harmless.
    [again] = await chat.send(f"/start {invite['token']}")
    assert again.text.startswith("С возвращением")


async def test_a_forwarded_personal_invite_is_refused_and_the_lead_is_told(
    acme: Workspace, globex: Workspace, talk: Talk
):
    await _lead(acme, "Lena Lead", LENA, talk)
    await _lead(globex, "Otto Lead", OTTO, talk)
    for lead in (LENA, OTTO):  # leads talk to the bot (MAX lets a bot write only after that)
        await talk.chat(lead).send("/start")
    anna = await member(acme.client, "Anna")
    invite = await ok(acme.client.post("/invites", json={"member_id": anna["id"]}), 201)
    await talk.chat(ANNA).send(f"/start {invite['token']}", replies=2)

    [refusal] = await talk.chat(BORIS).send(f"/start {invite['token']}")
    assert refusal.text.startswith("This invite was made for someone else")
    await _until(lambda: len(talk.sent_to(LENA)) == 2)  # hello, then the news
    assert "Boris" in talk.sent_to(LENA)[1].text
    assert len(talk.sent_to(OTTO)) == 1  # the other workspace hears nothing (but hello)
    assert (await ok(acme.client.get(f"/members/{anna['id']}")))[
        f"{talk.messenger}_user_id"
    ] == ANNA["id"]
    members = await ok(acme.client.get("/members"))
    assert [m["name"] for m in members["items"]] == ["Anna", "Lena Lead"]


async def test_a_group_invite_admits_people_with_tags_until_its_uses_run_out(
    acme: Workspace, engine: AsyncEngine, talk: Talk
):
    backend = await group(acme.client, "Backend")
    new = await tag(acme.client, "new")
    invite = await ok(
        acme.client.post(
            "/invites", json={"group_id": backend["id"], "tag_ids": [new["id"]], "max_uses": 1}
        ),
        201,
    )
    greeting, _ = await talk.chat(CARL).send(f"/start {invite['token']}", replies=2)
    assert greeting.text == "Hi Carl Jung! You are now in Acme."
    [carl] = (await ok(acme.client.get("/members")))["items"]
    assert carl[f"{talk.messenger}_user_id"] == CARL["id"] and carl["locale"] == "en"
    assert [g["name"] for g in carl["groups"]] == ["Backend"]
    assert [t["name"] for t in carl["tags"]] == ["new"]

    [used_up] = await talk.chat(DASHA).send(f"/start {invite['token']}")
    assert used_up.text == "Приглашение уже использовано. Попросите у руководителя новое."

    late = await ok(acme.client.post("/invites", json={"group_id": backend["id"]}), 201)
    async with make_sessionmaker(engine)() as session:
        await session.execute(
            update(Invite)
            .where(Invite.prefix == late["prefix"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    [expired] = await talk.chat(DASHA).send(f"/start {late['token']}")
    assert expired.text.startswith("Срок приглашения истёк")

    withdrawn = await ok(acme.client.post("/invites", json={"group_id": backend["id"]}), 201)
    await ok(acme.client.delete(f"/invites/{withdrawn['id']}"))
    [revoked] = await talk.chat(BORIS).send(f"/start {withdrawn['token']}")
    assert revoked.text.startswith("This invite was withdrawn")
    [unknown] = await talk.chat(BORIS).send("/start ibogus-token-123")
    assert unknown.text.startswith("I do not recognise this invite")
    assert len((await ok(acme.client.get("/members")))["items"]) == 1


async def test_invites_are_checked_and_sealed(acme: Workspace, globex: Workspace):
    outsider = await member(globex.client, "Otto")
    theirs = await group(globex.client, "Theirs")
    response = await acme.client.post("/invites", json={"member_id": outsider["id"]})
    assert response.status_code == 404
    response = await acme.client.post("/invites", json={"group_id": theirs["id"]})
    assert response.status_code == 404
    response = await acme.client.post("/invites", json={})
    assert response.status_code == 422
    linked = await member(acme.client, "Linked", telegram_user_id=99)
    response = await acme.client.post("/invites", json={"member_id": linked["id"]})
    assert response.status_code == 409 and response.json()["errors"][0]["field"] == "member_id"
    mine = await ok(
        acme.client.post("/invites", json={"group_id": (await group(acme.client, "G"))["id"]}), 201
    )
    assert (await globex.client.delete(f"/invites/{mine['id']}")).status_code == 404
    assert await ok(globex.client.get("/invites")) == []


async def test_events_and_next_show_what_is_coming_with_the_members_answer(
    acme: Workspace, talk: Talk
):
    anna = await member(
        acme.client, "Anna", **talk.account(ANNA), locale="ru", timezone="Europe/Moscow"
    )
    boris = await member(acme.client, "Boris", **talk.account(BORIS), timezone="Asia/Tokyo")
    team = await group(acme.client, "Team", anna, boris)
    soon = utcnow().replace(microsecond=0) + timedelta(days=2)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "location": "Room 1",
                "starts_at": soon.isoformat(),
                "audience": {"groups": [team["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 60,
            },
        ),
        201,
    )
    await ok(
        acme.client.post(
            "/events",
            json={"title": "Not for them", "starts_at": soon.isoformat(), "audience": {}},
        ),
        201,
    )
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )

    [listing] = await talk.chat(ANNA).send("/events")
    assert listing.text.splitlines()[0] == "Ваши ближайшие события:"
    assert listing.text.splitlines()[1].endswith("— Sync · иду")
    assert "Not for them" not in listing.text
    [upcoming] = await talk.chat(BORIS).send("/next")
    assert upcoming.text.startswith("Next: Sync, ") and ", Room 1." in upcoming.text
    assert "You have not answered yet." in upcoming.text
    [nothing] = await talk.chat(DASHA).send("/events")
    assert nothing.text.startswith("Вы пока не в команде")


async def test_calendar_gives_a_personal_feed_once_and_replaces_it_on_request(
    acme: Workspace, talk: Talk, app: object
):
    anna = await member(acme.client, "Anna", **talk.account(ANNA), locale="en")
    soon = utcnow().replace(microsecond=0) + timedelta(days=3)
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Retro",
                "starts_at": soon.isoformat(),
                "audience": {"members": [anna["id"]]},
            },
        ),
        201,
    )
    chat = talk.chat(ANNA)
    [first] = await chat.send("/calendar")
    url = next(w for w in first.text.split() if w.startswith("http"))
    assert "webcal://" in first.text
    site = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test")  # type: ignore[arg-type]
    async with site:
        feed = await site.get(httpx.URL(url).path)
        assert feed.status_code == 200
        calendar = icalendar.Calendar.from_ical(feed.content)
        assert [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")] == ["Retro"]

        [exists] = await chat.send("/calendar")
        assert exists.text.startswith("You already have a calendar link")
        [renewed] = await chat.press(exists, "New link", replies=1)
        new_url = next(w for w in renewed.text.split() if w.startswith("http"))
        assert new_url != url
        assert (await site.get(httpx.URL(url).path)).status_code == 404
        assert (await site.get(httpx.URL(new_url).path)).status_code == 200


async def test_settings_in_both_languages_and_bad_input_changes_nothing(
    acme: Workspace, engine: AsyncEngine, talk: Talk
):
    boris = await member(acme.client, "Boris", **talk.account(BORIS), email="b@example.org")
    chat = talk.chat(BORIS)
    [menu] = await chat.send("/settings")
    named = {"telegram": "Telegram", "max": "MAX"}[talk.messenger]
    assert "Quiet hours: none" in menu.text and f"Messages in {named}: on" in menu.text

    [ask] = await chat.press(menu, "Quiet hours", replies=1)
    assert ask.text.startswith("Send your quiet hours")
    [bad] = await chat.send("25:00-08:00")
    assert bad.text.startswith("I could not read “25:00-08:00”")
    assert (await ok(acme.client.get(f"/members/{boris['id']}")))["quiet_hours"] is None
    [good] = await chat.send("22:30-07:00")
    assert good.text.startswith("Quiet hours: 22:30-07:00")
    quiet = (await ok(acme.client.get(f"/members/{boris['id']}")))["quiet_hours"]
    assert quiet == {"start": "22:30", "end": "07:00"}

    [ask_zone] = await chat.press(menu, "Time zone", replies=1)
    assert ask_zone.text.startswith("Which time zone are you in?")
    [unknown] = await chat.send("Atlantis")
    assert unknown.text.startswith("I do not know the time zone “Atlantis”")
    [pick] = await chat.send("Kiev")
    assert pick.text.startswith("Several places match")
    await chat.press(pick, "Europe/Kyiv")
    await _until(lambda: "Europe/Kyiv" in chat.messages[-1].text)
    assert (await ok(acme.client.get(f"/members/{boris['id']}")))["timezone"] == "Europe/Kyiv"

    [times] = await chat.press(menu, "Time of day", replies=1)
    [nudge] = await chat.send("evening please")
    assert nudge.text == "Please tap one of the buttons above, or send /cancel."
    await chat.press(times, "evening")
    assert (await ok(acme.client.get(f"/members/{boris['id']}")))["preferred_time"] == "evening"

    [muted] = await chat.press(menu, f"Mute {named}", replies=1)
    assert muted.text.startswith(f"{named} messages are off")
    async with make_sessionmaker(engine)() as session:
        assert list(await session.scalars(select(ChannelBlock.channel))) == [talk.messenger]

    [languages] = await chat.press(menu, "Language", replies=1)
    await chat.press(languages, "Русский")
    await _until(lambda: chat.messages[-1].text == "Язык: русский.")
    [menu_ru] = await chat.send("/settings")
    assert "Тихие часы: 22:30-07:00" in menu_ru.text
    assert f"Сообщения в {named}: выключены (только другие пути)" in menu_ru.text
    await chat.press(menu_ru, f"Включить {named}", replies=1)
    async with make_sessionmaker(engine)() as session:
        assert list(await session.scalars(select(ChannelBlock.channel))) == []


async def test_unsubscribe_resubscribe_help_and_strangers(acme: Workspace, talk: Talk):
    dasha = await member(acme.client, "Dasha", **talk.account(DASHA), locale="ru")
    chat = talk.chat(DASHA)
    [off] = await chat.send("/unsubscribe")
    assert off.text.startswith("Готово: напоминаний больше не будет.")
    assert (await ok(acme.client.get(f"/members/{dasha['id']}")))["status"] == "unsubscribed"
    [again] = await chat.send("/unsubscribe")
    assert again.text.startswith("Вы уже отписаны")
    [on] = await chat.send("/resubscribe")
    assert on.text == "Напоминания снова включены."
    [helped] = await chat.send("/help")
    assert "/events" in helped.text and "/remind" not in helped.text
    [unknown] = await chat.send("/frobnicate")
    assert unknown.text.startswith("Не знаю такой команды")
    [free] = await chat.send("привет")
    assert free.text.startswith("Я понимаю команды и кнопки")

    stranger = talk.chat(OTTO)
    [hello] = await stranger.send("/start")
    assert hello.text.startswith("Hi! I am vestnik")
    [refused] = await stranger.send("/settings")
    assert refused.text.startswith("You are not in a team here yet")


async def test_blocking_the_bot_makes_the_member_unreachable_and_start_brings_them_back(
    acme: Workspace, talk: Talk
):
    anna = await member(acme.client, "Anna", **talk.account(ANNA))
    await tag(acme.client, "vip", anna)
    talk.chat(ANNA).blocks()

    async def status() -> str:
        return str((await ok(acme.client.get(f"/members/{anna['id']}")))["status"])

    for _ in range(100):
        if await status() == "unreachable":
            break
        await asyncio.sleep(0.1)
    assert await status() == "unreachable"
    assert [t["name"] for t in (await ok(acme.client.get(f"/members/{anna['id']}")))["tags"]] == [
        "vip"
    ]

    talk.chat(ANNA).blocks(False)
    [hello] = await talk.chat(ANNA).send("/start")
    assert hello.text.startswith("Hi Anna!")  # her own locale (en) wins over Telegram's
    assert await status() == "active"


async def test_who_shows_leads_the_board_and_refuses_plain_members(acme: Workspace, talk: Talk):
    lena = await _lead(acme, "Lena Lead", LENA, talk)
    await ok(acme.client.patch(f"/members/{lena['id']}", json={"locale": "ru"}))
    anna = await member(acme.client, "Anna", **talk.account(ANNA))
    boris = await member(acme.client, "Boris", **talk.account(BORIS))
    team = await group(acme.client, "Team", anna, boris)
    soon = utcnow().replace(microsecond=0) + timedelta(days=1)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Backend sync",
                "starts_at": soon.isoformat(),
                "audience": {"groups": [team["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 60,
            },
        ),
        201,
    )
    await ok(
        acme.client.put(
            f"/events/{event['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )

    [board] = await talk.chat(LENA).send("/who SYNC")
    lines = board.text.splitlines()
    assert lines[0].startswith("Backend sync, ")
    assert lines[1:] == ["Идут 1: Anna", "Не идут 0", "Возможно 0", "Молчат 1: Boris"]
    [none] = await talk.chat(LENA).send("/who retro")
    assert none.text == "Нет ближайшего события, похожего на «retro»."
    [usage] = await talk.chat(LENA).send("/who")
    assert usage.text.startswith("Отправьте /who")
    [refused] = await talk.chat(BORIS).send("/who sync")
    assert refused.text == "Only team leads can do that."
    [helped] = await talk.chat(LENA).send("/help")
    assert "/who" in helped.text and "/remind" in helped.text


async def test_remind_sends_a_quick_broadcast_after_a_confirm_step(
    acme: Workspace, engine: AsyncEngine, talk: Talk
):
    await _lead(acme, "Lena Lead", LENA, talk)
    anna = await member(acme.client, "Anna", **talk.account(ANNA))
    boris = await member(acme.client, "Boris", **talk.account(BORIS))
    await group(acme.client, "Backend team", anna, boris)
    for person in (ANNA, BORIS):  # they have opened the bot (MAX lets it write only after that)
        await talk.chat(person).send("/start")
    lead = talk.chat(LENA)

    [confirm] = await lead.send("/remind backend team Deploy at 5, {{ member.first_name }}!")
    assert (
        confirm.text
        == "Send this to 2 people in Backend team?\n\nDeploy at 5, {{ member.first_name }}!"
    )
    [nudge] = await lead.send("yes")
    assert nudge.text.startswith("Please tap one of the buttons")
    await lead.press(confirm, "Send")
    await _until(lambda: confirm.text == "Sending to 2 people.")
    sender = make_bot("123456:BOT", talk.telegram.base_url)
    try:
        await run_due(engine, talk.channel(sender), utcnow() + timedelta(seconds=1))
    finally:
        await sender.session.close()
    assert talk.chat(ANNA).messages[-1].text == "Deploy at 5, Anna!"
    assert talk.chat(BORIS).messages[-1].text == "Deploy at 5, Boris!"

    [cancel_me] = await lead.send("/remind Backend team Never mind")
    await lead.press(cancel_me, "Cancel")
    await _until(lambda: cancel_me.text == "Cancelled; nothing changed.")
    [unknown] = await lead.send("/remind #nosuchtag hello")
    assert unknown.text == "There is no group or tag called “nosuchtag”."
    [refused] = await talk.chat(BORIS).send("/remind Backend team hi")
    assert refused.text == "Only team leads can do that."


async def test_code_words_tag_the_sender_and_reply_but_not_on_a_polite_no(
    acme: Workspace, globex: Workspace, talk: Talk
):
    anna = await member(acme.client, "Anna Smirnova", **talk.account(ANNA), locale="ru")
    await member(globex.client, "Boris", **talk.account(BORIS))
    meetup = await tag(acme.client, "meetup")
    await ok(
        acme.client.post(
            "/code-words",
            json={
                "phrase": "хочу на митап",
                "tag_ids": [meetup["id"]],
                "reply": "{{ member.first_name }}, записали вас на митап!",
            },
        ),
        201,
    )
    await ok(
        acme.client.post(
            "/code-words", json={"phrase": "спасибо", "match": "contains", "reply": "Пожалуйста!"}
        ),
        201,
    )
    await ok(
        acme.client.post(
            "/code-words", json={"phrase": "спасибо, но нет", "match": "contains", "negative": True}
        ),
        201,
    )
    chat = talk.chat(ANNA)

    [reply] = await chat.send("Хочу на МИТАП!!! 🎉")
    assert reply.text == "Anna, записали вас на митап!"
    tags = (await ok(acme.client.get(f"/members/{anna['id']}")))["tags"]
    assert [t["name"] for t in tags] == ["meetup"]
    history = await ok(acme.client.get(f"/members/{anna['id']}/tag-history"))
    assert history[0]["actor"] == "code word “хочу на митап”"
    [welcome] = await chat.send("спасибо 🙏")
    assert welcome.text == "Пожалуйста!"
    [plain] = await chat.send("Спасибо, но нет")
    assert plain.text.startswith("Я понимаю команды и кнопки")
    # A member of another workspace sending the same phrase triggers nothing of Acme's.
    [other] = await talk.chat(BORIS).send("хочу на митап")
    assert other.text.startswith("I understand commands and buttons")


async def test_a_group_chat_linked_by_a_lead_gets_announcements_that_record_each_presser(
    acme: Workspace, globex: Workspace, engine: AsyncEngine, talk: Talk
):
    chat = {"id": -100500, "type": "supergroup", "title": "Backend chat"}
    await _lead(acme, "Lena Lead", LENA, talk)
    await _lead(globex, "Otto Lead", OTTO, talk)
    anna = await member(acme.client, "Anna", **talk.account(ANNA), locale="ru")
    boris = await member(acme.client, "Boris", **talk.account(BORIS))
    await member(acme.client, "Dasha", **talk.account(DASHA))
    backend = await group(acme.client, "Backend", anna, boris)
    await group(globex.client, "Theirs")

    async def say(user: dict[str, Any], text: str) -> str:
        seen = len(talk.in_group(chat))
        talk.says_in_group(user, chat, text)
        await _until(lambda: len(talk.in_group(chat)) > seen)
        return talk.in_group(chat)[-1].text

    assert await say(BORIS, "/link Backend") == "Only a team lead can link this chat."
    assert (await say(LENA, "/link backend")).startswith(
        "This chat is now linked to the group Backend"
    )
    assert (await say(OTTO, "/link Theirs")).startswith("This chat is linked to another team")

    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Backend sync",
                "starts_at": start.isoformat(),
                "audience": {"groups": [backend["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 60,
            },
        ),
        201,
    )
    sender = make_bot("123456:BOT", talk.telegram.base_url)
    try:
        channel = talk.channel(sender)
        await run_due(engine, channel, utcnow() + timedelta(days=1, hours=12))
        await run_due(engine, channel, utcnow() + timedelta(days=1, hours=13))
    finally:
        await sender.session.close()
    [announcement] = [m for m in talk.in_group(chat) if m.buttons]  # once, however often it runs
    assert announcement.text.startswith("Backend sync, ")

    assert await talk.press_in_group(ANNA, announcement, 0) == "Сохранено: Иду"
    await _until(lambda: announcement.text.endswith("Going 1 · Not going 0 · Maybe 0"))
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["going"]] == ["Anna"]

    for user, says in ((CARL, "You are not in this team"), (DASHA, "This event is not for you.")):
        assert (await talk.press_in_group(user, announcement, 1)).startswith(says)
        if not talk.on_max:  # MAX has no alerts: a notice is a notice
            assert talk.telegram.callback_answers[-1]["show_alert"]
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert board["counts"] == {"going": 1, "not_going": 0, "maybe": 0, "silent": 1}

    assert await say(LENA, "/unlink") == "This chat is no longer linked to a group."
    assert await say(LENA, "/unlink") == "This chat is not linked to a group."


async def test_webhook_mode_takes_updates_through_the_api_and_checks_the_secret(
    acme: Workspace, emulator: BotApiEmulator, settings: Settings, tmp_path: Any
):
    """Telegram's webhook (MAX's: tests/test_max.py)."""
    await member(acme.client, "Boris", telegram_user_id=BORIS["id"])
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/webhook"
    configured = settings.model_copy(
        update={
            "telegram_token": SecretStr("123456:HOOK"),
            "telegram_api_url": emulator.base_url,
            "bot_webhook_url": hook,
            "secret_key": SecretStr(KEY.decode()),
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(configured), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await _until(lambda: server.started)
        assert emulator.webhook_url == hook and len(emulator.webhook_secret) == 64

        emulator.user_sends(BORIS, "/help")
        await _until(lambda: emulator.sent_to(BORIS["id"]))
        assert emulator.sent_to(BORIS["id"])[0].text.startswith("What I can do:")
        await _until(lambda: emulator.webhook_statuses)  # answered once the update is handled
        assert emulator.webhook_statuses == [200]

        update = {
            "update_id": 999,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 1, "type": "private"},
                "text": "/help",
            },
        }
        async with httpx.AsyncClient() as client:
            forged = await client.post(
                hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
            )
            missing = await client.post(hook, json=update)
        assert (forged.status_code, missing.status_code) == (401, 401)
        assert emulator.sent_to(1) == []
    finally:
        server.should_exit = True
        await serving


async def test_the_emulator_chat_page_lets_a_person_try_the_bot(acme: Workspace, talk: Talk):
    backend = await group(acme.client, "Backend")
    invite = await ok(acme.client.post("/invites", json={"group_id": backend["id"]}), 201)
    me = {"id": 7777, "first_name": "Vera", "language_code": "en"}
    emulator = talk.max if talk.on_max else talk.telegram
    assert emulator is not None
    async with httpx.AsyncClient(base_url=emulator.base_url) as page:
        html = await page.get("/emulator")
        assert html.status_code == 200 and "Act as this person" in html.text
        sent = await page.post("/emulator/send", json={"user": me, "text": invite["start_command"]})
        assert sent.status_code == 200
        await _until(lambda: len(talk.sent_to(me)) == 2)
        messages = (await page.get("/emulator/messages", params={"chat_id": 7777})).json()
        assert messages[0]["text"] == "Hi Vera! You are now in Acme."
        question = messages[1]
        keep = question["reply_markup"]["inline_keyboard"][0][0]
        pressed = await page.post(
            "/emulator/press",
            json={
                "user": me,
                "chat_id": 7777,
                "message_id": question["message_id"],
                "data": keep["callback_data"],
            },
        )
        assert pressed.status_code == 200
        await _until(lambda: talk.sent_to(me)[1].text.startswith("Time zone: Europe/Moscow"))
        bad = await page.post("/emulator/send", json={"user": {"id": -1}, "text": "hi"})
        assert bad.status_code == 400


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "en",
            {
                "/help": "What I can do:",
                "/events": "Nothing is coming up in the next 60 days.",
                "/next": "Nothing is coming up in the next 60 days.",
                "/calendar": "Your personal calendar",
                "/settings": "Your settings:",
                "/unsubscribe": "Done: no more reminders.",
                "/resubscribe": "Reminders are on again.",
                "/who": "Send /who and part of the event's title",
                "/remind": "Send /remind, a group or #tag",
                "/remind Nowhere hello": "There is no group or tag called “Nowhere”.",
                "/cancel": "Cancelled; nothing changed.",
                "/nonsense": "I do not know that command.",
                "just chatting": "I understand commands and buttons",
            },
        ),
        (
            "ru",
            {
                "/help": "Что я умею:",
                "/events": "В ближайшие 60 дней ничего не запланировано.",
                "/next": "В ближайшие 60 дней ничего не запланировано.",
                "/calendar": "Ваш личный календарь",
                "/settings": "Ваши настройки:",
                "/unsubscribe": "Готово: напоминаний больше не будет.",
                "/resubscribe": "Напоминания снова включены.",
                "/who": "Отправьте /who и часть названия события",
                "/remind": "Отправьте /remind, группу или #метку",
                "/remind Nowhere hello": "Нет группы или метки «Nowhere».",
                "/cancel": "Отменено, ничего не изменилось.",
                "/nonsense": "Не знаю такой команды.",
                "just chatting": "Я понимаю команды и кнопки",
            },
        ),
    ],
)
async def test_every_command_answers_in_the_members_language(
    locale: str, expected: dict[str, str], acme: Workspace, talk: Talk
):
    lena = await _lead(acme, "Lena Lead", LENA, talk)
    await ok(acme.client.patch(f"/members/{lena['id']}", json={"locale": locale}))
    chat = talk.chat(LENA)
    for command, start in expected.items():
        [reply] = await chat.send(command)
        assert reply.text.startswith(start), (command, reply.text)


async def test_the_menu_button_opens_the_mini_app_when_vestnik_is_served_over_https(
    emulator: BotApiEmulator, settings: Settings, pg_url: str
):
    configured = settings.model_copy(
        update={
            "telegram_token": SecretStr("123456:MENU"),
            "telegram_api_url": emulator.base_url,
            "base_url": "https://vestnik.example",
        }
    )
    assert settings.redis_url is not None
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(configured, settings.redis_url, pg_url, stop))
    try:
        await _until(lambda: emulator.menu_button is not None)
    finally:
        stop.set()
        await task
    assert emulator.menu_button == {
        "type": "web_app",
        "text": "vestnik",
        "web_app": {"url": "https://vestnik.example/app"},
    }
