"""A read the API has answered before, sent again byte for byte, is answered before routing from
the answer kept at the current stamp (``api.kept_answers``): with the route's own bytes and
headers, never stale, never another workspace's, never for a token revoked or unknown, and any
other request goes through the routes untouched."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.kept_answers import MAX_BODY_BYTES, MAX_REMEMBERED_BYTES, KeptAnswers, KeptFigures
from core.reads.cache import Kind
from core.settings import Settings
from tests.conftest import ClientFor, Workspace, serving
from tests.factories import group, member, ok
from tests.test_connections import _drop_other_connections


def _figures(app: Any) -> KeptFigures:
    figures: KeptFigures = app.state.kept_answers
    return figures


async def _twice(
    client: httpx.AsyncClient, app: Any, method: str, path: str, **sent: Any
) -> tuple[httpx.Response, httpx.Response, int]:
    """The request sent twice: both answers and how many of them were answered here."""
    before = _figures(app).answered
    first = await client.request(method, path, **sent)
    second = await client.request(method, path, **sent)
    return first, second, _figures(app).answered - before


async def test_a_repeated_read_gets_the_routes_own_answer_without_being_routed(
    acme: Workspace, app: Any
):
    sales = await group(acme.client, "Sales", await member(acme.client, "Anna"))
    await member(acme.client, "Boris")
    reads: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/members?limit=50", {}),
        ("GET", "/events", {}),
        ("POST", "/audience/preview", {"json": {"groups": [sales["id"]]}}),
    ]
    for method, path, sent in reads:
        first, second, answered = await _twice(acme.client, app, method, path, **sent)
        assert first.status_code == second.status_code == 200, first.text
        assert answered == 1, path  # the second, from what the first left
        assert second.content == first.content
        assert second.headers.items() == first.headers.items()
    preview = await ok(acme.client.post("/audience/preview", json={"groups": [sales["id"]]}))
    assert [m["name"] for m in preview["members"]] == ["Anna"]


async def test_a_change_is_seen_by_the_very_next_repeated_read(acme: Workspace, app: Any):
    await member(acme.client, "Anna")
    await _twice(acme.client, app, "GET", "/members")
    await member(acme.client, "Boris")
    before = _figures(app).answered
    listed = await ok(acme.client.get("/members"))
    assert [m["name"] for m in listed["items"]] == ["Anna", "Boris"]
    assert _figures(app).answered == before  # the kept answer was out of date: routed


async def test_another_workspace_sending_the_same_bytes_gets_its_own_data(
    acme: Workspace, globex: Workspace, app: Any
):
    await member(acme.client, "Anna")
    await member(globex.client, "Gleb")
    _, _, answered = await _twice(acme.client, app, "GET", "/members?limit=7")
    assert answered == 1
    first, second, answered = await _twice(globex.client, app, "GET", "/members?limit=7")
    for answer in (first, second):
        assert [m["name"] for m in answer.json()["items"]] == ["Gleb"]
    assert answered == 1  # Globex's own answer, kept by its own first read


async def test_a_token_revoked_or_unknown_is_refused_even_for_a_remembered_request(
    acme: Workspace, app: Any, client_for: ClientFor
):
    await member(acme.client, "Anna")
    issued = await ok(
        acme.client.post("/tokens", json={"name": "dashboard", "role": "member"}), 201
    )
    dashboard = client_for(issued["token"])
    # Its first use writes last_used_at down, and what a transaction that wrote reads is not kept.
    await ok(dashboard.get("/members?limit=1"))
    _, second, answered = await _twice(dashboard, app, "GET", "/members?limit=3")
    assert second.status_code == 200 and answered == 1
    await ok(acme.client.delete(f"/tokens/{issued['id']}"))
    refused = await dashboard.get("/members?limit=3")
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    # The revoked token beside a valid one: the route reads the first, and so is it answered.
    await _twice(acme.client, app, "GET", "/members?limit=3")
    both = httpx.Headers(
        [("Authorization", f"Bearer {issued['token']}"), ("Authorization", f"Bearer {acme.token}")]
    )
    assert (await acme.client.get("/members?limit=3", headers=both)).status_code == 401
    unknown = client_for("vst_" + "x" * 43)
    assert (await unknown.get("/members?limit=3")).status_code == 401
    no_token = client_for("")
    no_token.headers.pop("Authorization")
    assert (await no_token.get("/members?limit=3")).status_code == 401


async def test_requests_that_differ_in_any_byte_are_routed_and_answered_as_the_route_does(
    acme: Workspace, app: Any
):
    anna = await member(acme.client, "Anna")
    asked = {"members": [anna["id"]]}
    await _twice(acme.client, app, "POST", "/audience/preview", json=asked)
    before = _figures(app).answered
    # The same JSON sent as another content type, then with a field the rule does not know.
    as_text = await acme.client.post(
        "/audience/preview", content=json.dumps(asked), headers={"content-type": "text/plain"}
    )
    unknown_field = await acme.client.post("/audience/preview", json={**asked, "everyone": True})
    assert unknown_field.status_code == 422
    assert "everyone" in unknown_field.text
    bad_limit = await acme.client.get("/members?limit=0")
    assert bad_limit.status_code == 422
    assert _figures(app).answered == before
    assert as_text.status_code in (200, 415, 422)
    # A body past what is read here goes to the route whole, every time.
    many = {"members": [anna["id"]] * (MAX_BODY_BYTES // 30)}
    assert len(json.dumps(many)) > MAX_BODY_BYTES
    first, second, answered = await _twice(acme.client, app, "POST", "/audience/preview", json=many)
    assert first.status_code == second.status_code
    assert first.content == second.content
    assert answered == 0


async def test_a_lost_database_connection_under_a_remembered_request_is_a_503_or_an_answer(
    acme: Workspace, app: Any, engine: AsyncEngine
):
    await member(acme.client, "Anna")
    await _twice(acme.client, app, "GET", "/members?limit=5")
    await _drop_other_connections(engine)
    answer = await acme.client.get("/members?limit=5")
    assert answer.status_code in (200, 503), answer.text
    for _ in range(3):
        listed = await ok(acme.client.get("/members?limit=5"))
        assert [m["name"] for m in listed["items"]] == ["Anna"]
    await engine.dispose()  # the tests' own pool lost its connections too: a fresh one


def test_what_is_remembered_is_bounded_in_bytes_not_only_in_requests():
    figures = KeptFigures()
    kept = KeptAnswers(app=None, figures=figures)  # type: ignore[arg-type]
    body = b"x" * MAX_BODY_BYTES
    for i in range(600):
        ask = ("POST", "/api/v1/audience/preview", b"", b"application/json", body + b"%d" % i)
        kept.remember(ask, Kind.audience, f"question {i}")
    assert figures.remembered <= MAX_REMEMBERED_BYTES // MAX_BODY_BYTES
    assert figures.remembered > MAX_REMEMBERED_BYTES // MAX_BODY_BYTES // 2  # the latest kept


async def test_over_real_http_a_remembered_preview_and_a_chunked_one_are_answered_alike(
    acme: Workspace, settings: Settings
):
    """uvicorn hands the body over as it arrives: a body of known length is read here and
    given to the route again; one sent in chunks (no length) goes to the route as it comes."""
    anna = await member(acme.client, "Anna")
    asked = json.dumps({"members": [anna["id"]], "limit": 5}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(asked), 7):
            yield asked[i : i + 7]

    async with (
        serving(settings) as url,
        httpx.AsyncClient(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {acme.token}"}
        ) as client,
    ):
        sent = {"content": asked, "headers": {"content-type": "application/json"}}
        answers = [await client.post("/audience/preview", **sent) for _ in range(3)]
        chunked = await client.post(
            "/audience/preview", content=chunks(), headers={"content-type": "application/json"}
        )
        bare = await client.post("/audience/preview", content=b"{", headers=sent["headers"])
    for answer in [*answers, chunked]:
        assert answer.status_code == 200, answer.text
        assert answer.content == answers[0].content
    assert [m["name"] for m in answers[0].json()["members"]] == ["Anna"]
    assert bare.status_code == 422
