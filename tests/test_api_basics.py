"""API plumbing a client relies on: OpenAPI, problem+json everywhere, size limits."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Workspace


async def test_openapi_describes_every_resource_and_bearer_auth(acme: Workspace):
    spec = (await acme.client.get("http://vestnik.test/openapi.json")).json()
    for path in ("members", "roles", "groups", "tags", "events", "tokens", "audience/preview"):
        assert f"/api/v1/{path}" in spec["paths"], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # Every error a route can answer is documented, the database's too (lost, too slow).
    listed = spec["paths"]["/api/v1/members"]["get"]["responses"]
    assert {"401", "403", "422", "503"} <= set(listed)
    assert "code" in spec["components"]["schemas"]["Problem"]["properties"]
    docs = await acme.client.get("http://vestnik.test/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unknown_paths_ids_and_broken_json_are_problems(acme: Workspace):
    missing = await acme.client.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    bad_id = await acme.client.get("/members/42")
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["field"] == "member_id"
    broken = await acme.client.post(
        "/members", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["message"] == "the body is not valid JSON"


async def test_oversized_bodies_are_refused_before_parsing(acme: Workspace):
    huge = await acme.client.post("/members", json={"name": "x" * 2_000_000})
    assert huge.status_code == 413
    assert huge.json()["title"] == "Request too large"


@pytest.mark.parametrize("token", [True, False], ids=["with a token", "without a token"])
async def test_a_chunked_body_is_cut_off_at_the_limit_not_read_whole(
    acme: Workspace, app, token: bool
):
    """No Content-Length (chunked): the API stops reading once 1 MiB has arrived, before it even
    checks the token, so 200 MB never sit in its memory."""
    sent = 0

    async def body():
        nonlocal sent
        for _ in range(200 * 16):  # 200 MB in 64 KiB chunks, if anyone asked for them all
            sent += 65536
            yield b"x" * 65536

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {acme.token}"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
    ) as client:
        refused = await client.post("/api/v1/groups", content=body(), headers=headers)
    assert refused.status_code == 413, refused.text
    assert "at most 1048576 bytes" in refused.text
    assert sent <= 2 * 1_048_576


async def test_core_errors_carry_a_stable_code_beside_the_message(acme: Workspace):
    missing = await acme.client.get("/members/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    await acme.client.post("/groups", json={"name": "Choir"})
    clash = await acme.client.post("/groups", json={"name": "choir"})
    assert (clash.status_code, clash.json()["code"]) == (409, "conflict")
    assert clash.json()["errors"][0]["field"] == "name"
    bad = await acme.client.post(
        "/events", json={"title": "X", "starts_at": "2027-01-10T10:00:00Z", "rrule": "FREQ=NEVER"}
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid")
