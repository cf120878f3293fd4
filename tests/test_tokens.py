"""API tokens: bearer auth, roles, revocation."""

from __future__ import annotations

import httpx

from tests.conftest import Workspace
from tests.factories import ok


async def test_owner_creates_lists_and_revokes_tokens(acme: Workspace, client_for):
    created = await ok(acme.client.post("/tokens", json={"name": "crm-sync", "role": "lead"}), 201)
    assert created["token"].startswith("vst_")
    crm = client_for(created["token"])
    assert (await crm.get("/members")).status_code == 200

    listed = await ok(acme.client.get("/tokens"))
    assert {t["name"] for t in listed} == {"owner", "crm-sync"}
    assert all("token" not in t for t in listed)  # the secret is shown once only
    crm_row = next(t for t in listed if t["name"] == "crm-sync")
    assert crm_row["last_used_at"] is not None

    revoked = await ok(acme.client.delete(f"/tokens/{created['id']}"))
    assert revoked["revoked_at"] is not None
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
