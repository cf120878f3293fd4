"""API tokens: bearer auth, roles, revocation."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.secrets import digest
from core.teams.builtin_roles import BuiltinRole
from core.teams.permissions import Actor
from core.teams.token_cache import MAX_AGE_SECONDS, Known, TokenCache
from tests.conftest import Workspace
from tests.factories import ok


async def _remembered(app: Any, token: str, client: httpx.AsyncClient) -> None:
    """Use the token until the API answers it from memory (once it listens for revocations)."""
    deadline = asyncio.get_running_loop().time() + 20
    while app.state.token_cache.get(digest(token)) is None:
        assert (await client.get("/members")).status_code == 200
        assert asyncio.get_running_loop().time() < deadline, "the API never kept the token"
        await asyncio.sleep(0.05)


async def test_owner_creates_lists_and_revokes_tokens(app, acme: Workspace, client_for):
    created = await ok(acme.client.post("/tokens", json={"name": "crm-sync", "role": "lead"}), 201)
    assert created["token"].startswith("vst_")
    crm = client_for(created["token"])
    assert (await crm.get("/members")).status_code == 200
    await _remembered(app, created["token"], crm)

    listed = await ok(acme.client.get("/tokens"))
    assert {t["name"] for t in listed} == {"owner", "crm-sync"}
    assert all("token" not in t for t in listed)  # the secret is shown once only
    crm_row = next(t for t in listed if t["name"] == "crm-sync")
    assert crm_row["last_used_at"] is not None

    revoked = await ok(acme.client.delete(f"/tokens/{created['id']}"))
    assert revoked["revoked_at"] is not None
    # Forgotten as the revocation committed, not when Postgres' notice comes round.
    assert app.state.token_cache.get(digest(created["token"])) is None
    refused = await crm.get("/members")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["detail"] == "unknown or revoked API token"


async def test_missing_or_malformed_tokens_get_401(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as anon:
        assert (await anon.get("/members")).status_code == 401
        for header in ("Bearer nope", "Basic dXNlcjpwYXNz", "Bearer vst_" + "x" * 43):
            response = await anon.get("/members", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert response.headers["content-type"] == "application/problem+json"


async def test_lead_and_member_tokens_are_limited_by_role(acme: Workspace, client_for):
    lead = client_for((await ok(acme.client.post("/tokens", json={"name": "l"}), 201))["token"])
    reader = client_for(
        (await ok(acme.client.post("/tokens", json={"name": "r", "role": "member"}), 201))["token"]
    )

    forbidden = await lead.post("/tokens", json={"name": "sneaky", "role": "owner"})
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "the lead role may not manage API tokens"
    assert (await lead.get("/tokens")).status_code == 403
    assert (await lead.post("/members", json={"name": "Anna"})).status_code == 201

    assert (await reader.get("/members")).status_code == 200
    assert (await reader.post("/members", json={"name": "Boris"})).status_code == 403
    assert (await reader.post("/groups", json={"name": "G"})).status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE api_tokens SET revoked_at = now() WHERE id = :id",
        "DELETE FROM api_tokens WHERE id = :id",
    ],
    ids=["revoked", "deleted"],
)
async def test_a_token_revoked_by_another_process_stops_working_at_once(
    app, acme: Workspace, client_for, engine: AsyncEngine, change: str
):
    created = await ok(acme.client.post("/tokens", json={"name": "crm"}), 201)
    crm = client_for(created["token"])
    await _remembered(app, created["token"], crm)
    # Not through this API: as `vestnik token revoke` or another API worker would change it.
    async with engine.begin() as connection:
        await connection.execute(text(change), {"id": uuid.UUID(created["id"])})
    # Postgres tells every listening API as the change commits: long before a kept token's
    # MAX_AGE_SECONDS run out, which is all that would stop it otherwise.
    deadline = asyncio.get_running_loop().time() + MAX_AGE_SECONDS / 3
    while (await crm.get("/members")).status_code != 401:
        assert asyncio.get_running_loop().time() < deadline, "the revoked token still works"
        await asyncio.sleep(0.05)


def test_the_token_cache_keeps_nothing_it_cannot_vouch_for():
    cache = TokenCache()
    actor = Actor(workspace_id=uuid.uuid4(), role=BuiltinRole.lead, label="token:t")
    known = Known(actor, None, time.monotonic())
    cache.put("a", known, cache.generation)
    assert cache.get("a") is None  # not listening for revocations yet: nothing is kept
    cache.listening()
    looked_up_at = cache.generation
    cache.heard("b")  # a revocation was heard while "a" was being looked up
    cache.put("a", known, looked_up_at)
    assert cache.get("a") is None
    cache.put("a", known, cache.generation)
    assert cache.get("a") is known
    cache.heard("a")
    assert cache.get("a") is None
    cache.put("a", known, cache.generation)
    cache.deaf()  # the listening connection dropped: what it might have missed is forgotten
    assert cache.get("a") is None
    cache.listening()
    cache.put("a", Known(actor, None, time.monotonic() - MAX_AGE_SECONDS - 1), cache.generation)
    assert cache.get("a") is None  # kept too long, whatever was heard
