"""Replies understood by meaning: the labelled replies in tests/data/replies.csv (the floor is
set from them; the closing note has the full figures), code words matched by meaning through
the API, and answers in words through the bot (real HTTP to the emulator)."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.journeys.runner import advance_due
from core.meaning.judge import Intent, match_phrase, read_answer
from tests.chats import Talk
from tests.conftest import MovableClock, Workspace
from tests.factories import member, ok
from tests.test_dispatch import run_due
from worker.channels import TelegramChannel

REPLIES = Path(__file__).parent / "data" / "replies.csv"
LABELS = {"yes": Intent.yes, "no": Intent.no, "unsure": Intent.maybe, "unrelated": Intent.unrelated}


def _confusion() -> Counter[tuple[Intent, Intent]]:
    with REPLIES.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 150
    return Counter((LABELS[r["label"]], read_answer(r["text"]).intent) for r in rows)


def test_the_labelled_replies_never_turn_a_no_into_a_yes():
    confusion = _confusion()
    figures = {}
    for intent in (Intent.yes, Intent.no, Intent.maybe, Intent.unrelated):
        said = sum(n for (_, got), n in confusion.items() if got is intent)
        meant = sum(n for (want, _), n in confusion.items() if want is intent)
        hit = confusion[(intent, intent)]
        figures[intent] = (hit / said if said else 1.0, hit / meant)
    print({k.value: (round(p, 3), round(r, 3)) for k, (p, r) in figures.items()})
    # The floor, from the data: an answer is never read as its opposite (asking again is fine),
    # and yes / no are read right at least 9 times in 10 when they are decided at all.
    assert confusion[(Intent.no, Intent.yes)] == 0
    assert confusion[(Intent.yes, Intent.no)] == 0
    assert confusion[(Intent.maybe, Intent.yes)] == 0
    for intent in (Intent.yes, Intent.no):
        precision, recall = figures[intent]
        assert precision >= 0.95 and recall >= 0.8, (intent, precision, recall)


@pytest.mark.parametrize(
    ("reply", "phrase", "decision"),
    [
        ("благодарю", "спасибо", Intent.yes),
        ("спс", "спасибо", Intent.yes),
        ("Спасибо!!! 🙏", "спасибо", Intent.yes),
        ("спасибо, но нет", "спасибо", Intent.no),
        ("не спасибо", "спасибо", Intent.no),
        ("thank you so much", "спасибо", Intent.yes),
        ("погода хорошая", "спасибо", Intent.no),
    ],
)
def test_a_phrase_matches_by_meaning_but_not_through_a_no(
    reply: str, phrase: str, decision: Intent
):
    assert match_phrase(reply, phrase).decision is decision


@pytest.mark.parametrize(
    ("reply", "intent"),
    [
        ("да, приду", Intent.yes),
        ("буду", Intent.yes),
        ("не приду", Intent.no),
        ("не смогу", Intent.no),
        ("не знаю как остальные, но я буду", Intent.yes),
        ("хотел бы, но не получится", Intent.no),
        ("может быть", Intent.maybe),
        ("во сколько начало?", Intent.unrelated),
    ],
)
def test_answers_in_words(reply: str, intent: Intent):
    assert read_answer(reply).intent is intent


async def test_a_code_word_by_meaning_fires_on_other_words_and_shows_its_score(acme: Workspace):
    await ok(
        acme.client.post(
            "/code-words",
            json={"phrase": "спасибо", "match": "meaning", "reply": "Пожалуйста!"},
        ),
        201,
    )
    thanks = await ok(acme.client.post("/code-words/test", json={"text": "благодарю"}))
    assert [w["phrase"] for w in thanks["fired"]] == ["спасибо"]
    [score] = thanks["meaning"]
    assert score["decision"] == "match" and score["score"] > 0.78
    polite_no = await ok(acme.client.post("/code-words/test", json={"text": "спасибо, но нет"}))
    assert polite_no["fired"] == [] and polite_no["meaning"][0]["decision"] == "no"


async def test_members_answer_in_their_own_words_and_unclear_words_get_the_buttons_again(
    acme: Workspace,
    engine: AsyncEngine,
    telegram: TelegramChannel,
    talk: Talk,
):
    person = {"id": 2001, "first_name": "Анна", "language_code": "ru"}
    anna = await member(acme.client, "Анна", **talk.account(person), locale="ru")
    chat = talk.chat(person)
    await chat.send("/start")  # she has opened the bot (MAX lets it write only after that)
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Планёрка",
                "starts_at": "2026-12-10T09:00:00Z",
                "audience": {"members": [anna["id"]]},
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    await run_due(engine, talk.channel(telegram.bot), datetime(2026, 12, 9, 7, 0, tzinfo=UTC))
    [reply] = await chat.send("да, буду")
    assert reply.text.startswith("Понял: Иду — Планёрка")
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["going"]] == ["Анна"]

    [again] = await chat.send("хм")
    assert again.text.startswith("Не уверен, что понял")
    await chat.press(again, "Не иду")
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["not_going"]] == ["Анна"]

    [other] = await chat.send("а парковка там есть?")  # not an answer: the usual hint
    assert "команды" in other.text


async def test_a_journey_question_is_answered_in_words(
    acme: Workspace,
    engine: AsyncEngine,
    telegram: TelegramChannel,
    clock: MovableClock,
    talk: Talk,
):
    person = {"id": 2002, "first_name": "Boris", "language_code": "en"}
    boris = await member(acme.client, "Boris", **talk.account(person))
    chat = talk.chat(person)
    await chat.send("/start")
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
                        "timeout_minutes": 600,
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
    await ok(acme.client.post(f"/journeys/{jid}/runs", json={"member_ids": [boris["id"]]}), 201)
    await advance_due(make_sessionmaker(engine), "test", utcnow)
    await run_due(engine, talk.channel(telegram.bot), utcnow())
    [reply] = await chat.send("yep 👍")
    assert reply.text == "Got it: Yes."
    runs = await ok(acme.client.get(f"/journeys/{jid}/runs"))
    assert runs["items"][0]["step_key"] == "yes"
