"""The journey builder and funnel on the server: building step by step with errors beside the
field (a loop without a wait refused before saving), reordering and deleting, activating,
the waiting list and moves by hand (audited), copying into another workspace the lead leads;
members refused, workspaces sealed, CSRF checked."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.journeys.runner import advance_due
from tests.conftest import Workspace
from tests.factories import group, member, ok, role_id
from tests.webapp_helpers import sign_in

LENA = {"id": 7101, "first_name": "Lena"}
ANNA = {"id": 7102, "first_name": "Anna"}
GREG = {"id": 7103, "first_name": "Greg"}


async def _lead(ws: Workspace, user: dict[str, Any], name: str) -> dict[str, Any]:
    return await member(
        ws.client, name, telegram_user_id=user["id"], role_ids=[await role_id(ws.client, "lead")]
    )


def _journey_id(page: httpx.Response) -> str:
    found = re.search(r"/app/journeys/([0-9a-f-]{36})/steps", page.text)
    assert found, page.text[:2000]
    return found.group(1)


def _steps(page: httpx.Response) -> list[str]:
    """The cards' plain-word descriptions, top to bottom."""
    return [
        html.unescape(re.sub(r"\s+", " ", s).strip())
        for s in re.findall(r'<p class="said">(.*?)</p>', page.text, re.S)
    ]


async def test_a_lead_builds_a_journey_step_by_step_and_moves_a_member(
    acme: Workspace, engine: AsyncEngine, site: httpx.AsyncClient
):
    await _lead(acme, LENA, "Lena Lead")
    anna = await member(acme.client, "Anna", timezone="Europe/Berlin")
    course = await group(acme.client, "Course 2027")
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}

    made = await site.post(
        "/app/journeys",
        data={"name": "Course onboarding", "trigger": "joined_group", "group_id": course["id"]},
        headers=headers,
    )
    assert made.status_code == 200 and "Course onboarding" in made.text
    assert "someone joins the group Course 2027" in made.text
    jid = _journey_id(made)
    add = f"/app/journeys/{jid}/steps"
    await site.post(add, data={"kind": "send", "text": "Welcome!"}, headers=headers)
    await site.post(add, data={"kind": "wait", "wait_mode": "preferred"}, headers=headers)
    page = await site.post(
        add,
        data={
            "kind": "wait_for_reply",
            "text": "Have you opened lesson 1?",
            "choice_label_0": "Yes",
            "choice_label_1": "Not yet",
            "timeout_amount": "3",
            "timeout_unit": "days",
        },
        headers=headers,
    )
    assert page.status_code == 200
    assert _steps(page) == [
        "Send “Welcome!”",
        "Wait until the member's preferred time of day (morning 09:00, day 13:00, evening 19:00, "
        "their zone)",
        "Ask “Have you opened lesson 1?”; “Yes” → the end; “Not yet” → the end; "
        "if no answer in 3 days → the end",
    ]

    # A bad value: the error is beside its field, and nothing is saved.
    bad = await site.post(
        add,
        data={"kind": "wait", "wait_mode": "duration", "amount": "soon", "unit": "days"},
        headers=headers,
    )
    assert bad.status_code == 422 and 'id="new-amount-error"' in bad.text
    assert len(_steps(bad)) == 3
    # A loop with no wait in it is refused before saving, next to the "go to" field.
    loop = await site.post(add, data={"kind": "goto", "to": "send-1"}, headers=headers)
    assert loop.status_code == 200  # send → wait → … → goto send: the wait breaks the loop
    jumpy = await site.post(f"/app/journeys/{jid}/steps/3", data={"to": "goto-1"}, headers=headers)
    assert jumpy.status_code == 422 and 'id="s3-to-error"' in jumpy.text
    assert "loop" in jumpy.text
    assert _steps(jumpy)[3].startswith("Go to step 1")

    # Reorder and delete.
    up = await site.post(f"/app/journeys/{jid}/steps/3/up", headers=headers)
    assert [s.split(" ")[0] for s in _steps(up)] == ["Send", "Wait", "Go", "Ask"]
    gone = await site.post(f"/app/journeys/{jid}/steps/2/delete", headers=headers)
    assert [s.split(" ")[0] for s in _steps(gone)] == ["Send", "Wait", "Ask"]

    active = await site.post(f"/app/journeys/{jid}/activate", headers=headers)
    assert "status-active" in active.text
    await ok(
        acme.client.post(f"/groups/{course['id']}/members/add", json={"member_ids": [anna["id"]]})
    )
    await advance_due(make_sessionmaker(engine), "test", utcnow)
    builder = await site.get(f"/app/journeys/{jid}")
    figures = re.findall(r'class="waiting">\S+ <b>(\d+)</b>', builder.text)
    assert figures == ["0", "1", "0"]  # Anna waits for her morning at step 2
    assert "<svg" in builder.text and "Funnel" in builder.text

    waiting = await site.get(f"/app/journeys/{jid}/at/wait-1")
    assert "Anna" in waiting.text
    run_id = re.search(r'name="run_id" value="([0-9a-f-]{36})"', waiting.text)
    assert run_id
    nobody = await site.post(
        f"/app/journeys/{jid}/at/wait-1/move", data={"to": "wait-for-reply-1"}, headers=headers
    )
    assert nobody.status_code == 422 and "Tick at least one" in nobody.text
    done = await site.post(
        f"/app/journeys/{jid}/at/wait-1/move",
        data={"to": "wait-for-reply-1", "run_id": run_id.group(1)},
        headers=headers,
    )
    assert done.status_code == 200 and "1 member moved." in done.text
    runs = await ok(acme.client.get(f"/journeys/{jid}/runs"))
    assert runs["items"][0]["step_key"] == "wait-for-reply-1"
    audit = await ok(acme.client.get("/audit"))
    assert any("Anna wait-1 → wait-for-reply-1" in e["summary"] for e in audit)
    csv = await site.get(f"/app/journeys/{jid}/stats.csv")
    assert csv.status_code == 200 and "wait-for-reply-1" in csv.text


async def test_journey_pages_are_for_leads_sealed_and_csrf_checked(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    mine = await ok(
        acme.client.post(
            "/journeys",
            json={"name": "Acme secret", "trigger": {"type": "manual"}, "steps": []},
        ),
        201,
    )
    await _lead(globex, GREG, "Greg")
    await sign_in(site, ANNA)
    assert (await site.get("/app/journeys")).status_code == 403
    greg = {"X-CSRF-Token": await sign_in(site, GREG)}
    listed = await site.get("/app/journeys")
    assert listed.status_code == 200 and "Acme secret" not in listed.text
    assert (await site.get(f"/app/journeys/{mine['id']}")).status_code == 404
    steal = await site.post(f"/app/journeys/{mine['id']}/steps", data={"kind": "end"}, headers=greg)
    assert steal.status_code == 422 and "not found" in steal.text  # an action's refusal
    no_csrf = await site.post("/app/journeys", data={"name": "X", "trigger": "manual"})
    assert no_csrf.status_code == 403
    assert (await ok(acme.client.get(f"/journeys/{mine['id']}")))["steps"] == []


async def test_a_lead_copies_a_journey_into_another_workspace_they_lead(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA, "Lena")
    await _lead(globex, LENA, "Lena")
    for ws in (acme, globex):
        await group(ws.client, "Course")
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}
    page = await site.post(
        "/app/journeys", data={"name": "Drip", "trigger": "manual"}, headers=headers
    )
    jid = _journey_id(page)
    page = await site.post(
        f"/app/journeys/{jid}/steps", data={"kind": "alert", "reason": "hi"}, headers=headers
    )
    target = re.search(
        r'<select id="copy-to" name="target"><option value="([0-9a-f-]{36})"', page.text
    )
    assert target, "the other workspace is offered"
    plan = await site.post(
        f"/app/journeys/{jid}/copy", data={"target": target.group(1)}, headers=headers
    )
    assert "Nothing new is needed there" in plan.text
    done = await site.post(
        f"/app/journeys/{jid}/copy",
        data={"target": target.group(1), "confirm": "1"},
        headers=headers,
    )
    assert "Copied as a draft" in done.text
    copies = [await ok(ws.client.get("/journeys")) for ws in (acme, globex)]
    assert sorted(len(c) for c in copies) == [1, 1]
    stranger = await site.post(
        f"/app/journeys/{jid}/copy",
        data={"target": "00000000-0000-0000-0000-000000000001", "confirm": "1"},
        headers=headers,
    )
    assert stranger.status_code == 422


async def test_a_lead_tries_a_phrase_against_a_code_word_by_meaning(
    acme: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA, "Lena Lead")
    await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    await sign_in(site, ANNA)
    assert (await site.get("/app/code-words")).status_code == 403
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}
    bad = await site.post(
        "/app/code-words",
        data={"phrase": "!!!", "match": "meaning", "reply": "Hi"},
        headers=headers,
    )
    assert bad.status_code == 422 and "letters or digits" in bad.text
    added = await site.post(
        "/app/code-words",
        data={"phrase": "спасибо", "match": "meaning", "reply": "Пожалуйста!"},
        headers=headers,
    )
    assert added.status_code == 200 and "by meaning" in added.text
    tried = await site.post("/app/code-words/test", data={"text": "благодарю"}, headers=headers)
    result = html.unescape(re.sub(r"<[^>]+>", " ", tried.text.split('id="trial-result"')[1]))
    assert "Fires" in result and "спасибо" in result and " match " in result
    score = float(re.search(r"(\d\.\d\d)", result).group(1))  # type: ignore[union-attr]
    assert 0.78 <= score <= 1.0
    polite_no = await site.post(
        "/app/code-words/test", data={"text": "спасибо, но нет"}, headers=headers
    )
    assert "No code word fires." in polite_no.text and "no match" in polite_no.text
