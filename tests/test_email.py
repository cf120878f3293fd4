"""The email channel against a real local SMTP server (aiosmtpd), and answer links from mail."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.policy import default
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.delivery.answer_buttons import LINK_VERSION, decode_answer, encode_answer
from core.delivery.channels import Channel
from core.delivery.dispatch import dispatch_job, retry_deferred
from core.delivery.jobs import claim_due_jobs
from core.delivery.models import ChannelBlock, Delivery
from core.events.models import Answer
from core.journeys.runner import advance_due
from core.settings import Settings
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace, free_port
from tests.factories import member, ok
from worker.channels import TelegramChannel
from worker.mail import EmailChannel

START = "2026-12-10T09:00:00Z"


@dataclass
class Mailbox:
    """An SMTP server's behaviour: refuse some addresses for good, others for now."""

    received: list[Message] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.busy:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.received if m["To"] == address]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def mail_channel(settings: Settings, mailbox: tuple[Mailbox, int]) -> EmailChannel:
    _, port = mailbox
    configured = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
    )
    return EmailChannel(configured)


async def run_due(
    engine: AsyncEngine, channels: list[Channel], key: bytes, at: datetime
) -> dict[str, int]:
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        jobs = await claim_due_jobs(session, "test", at)
        await session.commit()
    totals: dict[str, int] = {}
    for job in jobs:
        report = await dispatch_job(sessions, job.id, channels, key, lambda: at)
        for k, v in report.outcomes.items():
            totals[k] = totals.get(k, 0) + v
    return totals


def body(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    return str(message.get_content())


async def confirmation_event(client: httpx.AsyncClient, *people: dict[str, Any]) -> None:
    await ok(
        client.post(
            "/events",
            json={
                "title": "Планёрка",
                "starts_at": START,
                "audience": {"members": [p["id"] for p in people]},
                "reminder_offsets": [1440],
                "confirmation_required": True,
                "confirm_by": "2026-12-10T07:00:00Z",
            },
        ),
        201,
    )


async def test_email_carries_the_request_in_the_members_language_and_its_links_record_answers(
    acme: Workspace,
    engine: AsyncEngine,
    settings: Settings,
    app: object,
    mailbox: tuple[Mailbox, int],
    mail_channel: EmailChannel,
):
    box, _ = mailbox
    anna = await member(
        acme.client, "Анна Петрова", email="anna@example.org", locale="ru", timezone="Asia/Tokyo"
    )
    await confirmation_event(acme.client, anna)

    sent = await run_due(
        engine, [mail_channel], settings.signing_key, datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
    )
    assert sent == {"sent": 2}  # the reminder and the confirmation request
    mails = box.to("anna@example.org")
    assert len(mails) == 2
    request = next(m for m in mails if "Ответьте" in body(m))
    assert request["Subject"].startswith("Анна, вы будете на «Планёрка»")
    assert "18:00" in body(request)  # 09:00 UTC is 18:00 in Tokyo
    links = dict(re.findall(r"^(Иду|Не иду|Возможно): (\S+)$", body(request), re.M))
    assert set(links) == {"Иду", "Не иду", "Возможно"}

    site = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://vestnik.test",
    )
    async with site:
        path = httpx.URL(links["Не иду"]).path
        page = await site.get(path)
        assert page.status_code == 200 and "Не иду" in page.text and "<form" in page.text
        # Opening the link (a mail scanner does) records nothing; the form's button does.
        board = await ok(acme.client.get(f"/events/{await only_event(acme)}/confirmations"))
        assert board["counts"]["silent"] == 1
        done = await site.post(path)
        assert done.status_code == 200 and "Записали" in done.text
        board = await ok(acme.client.get(f"/events/{await only_event(acme)}/confirmations"))
        assert [p["name"] for p in board["not_going"]] == ["Анна Петрова"]

        forged = await site.post(path[:-3] + "AAA")
        assert forged.status_code == 404 and "not valid" in forged.text

        # A Telegram button's data for the same delivery is not a link: the bot checks who
        # pressed a button, a link has no presser to check, so neither passes for the other.
        link_data = path.rsplit("/", 1)[1]
        found = decode_answer(settings.signing_key, link_data, LINK_VERSION)
        assert found is not None and decode_answer(settings.signing_key, link_data) is None
        button = encode_answer(settings.signing_key, found.delivery_id, Answer.going)
        as_link = await site.post(f"/answer/{button}")
        assert as_link.status_code == 404 and "not valid" in as_link.text


async def only_event(workspace: Workspace) -> str:
    events = await ok(workspace.client.get("/events"))
    return str(events["items"][0]["id"])


async def test_refused_mailbox_is_unreachable_and_a_busy_one_is_retried(
    acme: Workspace,
    engine: AsyncEngine,
    settings: Settings,
    mailbox: tuple[Mailbox, int],
    mail_channel: EmailChannel,
):
    box, _ = mailbox
    box.refuse.add("gone@example.org")
    box.busy.add("busy@example.org")
    gone = await member(acme.client, "Gone", email="gone@example.org")
    busy = await member(acme.client, "Busy", email="busy@example.org")
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"members": [gone["id"], busy["id"]]},
                "reminder_offsets": [60],
            },
        ),
        201,
    )
    at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    assert await run_due(engine, [mail_channel], settings.signing_key, at) == {
        "unreachable": 1,
        "retry": 1,
    }
    assert (await ok(acme.client.get(f"/members/{gone['id']}")))["status"] == "unreachable"
    assert (await ok(acme.client.get(f"/members/{busy['id']}")))["status"] == "active"

    box.busy.clear()
    sessions = make_sessionmaker(engine)
    later = datetime(2026, 12, 10, 8, 1, 1, tzinfo=UTC)
    report = await retry_deferred(sessions, [mail_channel], settings.signing_key, lambda: later)
    assert report.outcomes == {"sent": 1}
    assert len(box.to("busy@example.org")) == 1
    assert box.to("gone@example.org") == []


async def test_a_member_who_blocked_the_bot_still_gets_email_and_keeps_telegram_blocked_only(
    acme: Workspace,
    engine: AsyncEngine,
    settings: Settings,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
    mailbox: tuple[Mailbox, int],
    mail_channel: EmailChannel,
):
    box, _ = mailbox
    anna = await member(acme.client, "Anna", telegram_user_id=501, email="anna@example.org")
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync",
                "starts_at": START,
                "audience": {"members": [anna["id"]]},
                "reminder_offsets": [120, 60],
            },
        ),
        201,
    )
    channels: list[Channel] = [telegram, mail_channel]
    key = settings.signing_key
    # Telegram first: she reads it there, and gets no copy by mail.
    emulator.block(501)
    first = await run_due(engine, channels, key, datetime(2026, 12, 10, 7, 0, tzinfo=UTC))
    assert first == {"unreachable": 1}
    assert (await ok(acme.client.get(f"/members/{anna['id']}")))["status"] == "active"
    second = await run_due(engine, channels, key, datetime(2026, 12, 10, 8, 0, tzinfo=UTC))
    assert second == {"sent": 1}
    assert [m["Subject"] for m in box.to("anna@example.org")] == [
        "Reminder: Sync — Thursday 10 December, 12:00."
    ]
    async with make_sessionmaker(engine)() as session:
        blocks = list(await session.scalars(select(ChannelBlock.channel)))
        channels_used = list(
            await session.scalars(select(Delivery.channel).order_by(Delivery.created_at))
        )
    assert blocks == ["telegram"]
    assert channels_used == ["telegram", "email"]


async def test_a_journey_question_by_email_is_answered_through_its_links(
    acme: Workspace,
    engine: AsyncEngine,
    settings: Settings,
    app: object,
    mailbox: tuple[Mailbox, int],
    mail_channel: EmailChannel,
):
    box, _ = mailbox
    anna = await member(acme.client, "Anna", email="anna@example.org")
    made = await ok(
        acme.client.post(
            "/journeys",
            json={
                "name": "Lesson check",
                "trigger": {"type": "manual"},
                "steps": [
                    {
                        "key": "ask",
                        "type": "wait_for_reply",
                        "message": {"text": "Have you opened lesson 1?"},
                        "choices": [{"label": "Yes", "to": "yes"}, {"label": "Not yet"}],
                        "timeout_minutes": 60,
                    },
                    {"key": "later", "type": "end"},
                    {"key": "yes", "type": "wait", "minutes": 60},
                ],
            },
        ),
        201,
    )
    jid = made["id"]
    await ok(acme.client.post(f"/journeys/{jid}/activate"))
    await ok(acme.client.post(f"/journeys/{jid}/runs", json={"member_ids": [anna["id"]]}), 201)
    await advance_due(make_sessionmaker(engine), "test", utcnow)
    assert await run_due(engine, [mail_channel], settings.signing_key, utcnow()) == {"sent": 1}
    [mail] = box.to("anna@example.org")
    links = dict(re.findall(r"^(Yes|Not yet): (\S+)\r?$", body(mail), re.M))
    assert set(links) == {"Yes", "Not yet"}

    site = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://vestnik.test",
    )
    async with site:
        path = httpx.URL(links["Yes"]).path
        page = await site.get(path)
        assert page.status_code == 200 and "Yes" in page.text and "<form" in page.text
        [run] = (await ok(acme.client.get(f"/journeys/{jid}/runs")))["items"]
        assert run["step_key"] == "ask"  # opening the link answered nothing
        done = await site.post(path)
        assert done.status_code == 200 and "Recorded: Yes" in done.text
        [run] = (await ok(acme.client.get(f"/journeys/{jid}/runs")))["items"]
        assert run["step_key"] == "yes"
        again = await site.post(httpx.URL(links["Not yet"]).path)
        assert again.status_code == 409 and "closed" in again.text
