"""Groups and permanent tags, managed in bulk."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Workspace
from tests.factories import fields_of, group, member, ok, tag


async def test_bulk_add_and_remove_group_members_report_what_changed(acme: Workspace):
    anna, boris, vera = [await member(acme.client, n) for n in ("Anna", "Boris", "Vera")]
    backend = await group(acme.client, "Backend", anna)

    added = await ok(
        acme.client.post(
            f"/groups/{backend['id']}/members/add",
            json={"member_ids": [anna["id"], boris["id"], vera["id"]]},
        )
    )
    assert added == {"changed": 2, "unchanged": 1}
    listed = await ok(acme.client.get(f"/groups/{backend['id']}/members"))
    assert [m["name"] for m in listed["items"]] == ["Anna", "Boris", "Vera"]
    assert (await ok(acme.client.get(f"/groups/{backend['id']}")))["member_count"] == 3

    removed = await ok(
        acme.client.post(
            f"/groups/{backend['id']}/members/remove", json={"member_ids": [boris["id"]]}
        )
    )
    assert removed == {"changed": 1, "unchanged": 0}
    assert [
        g["name"] for g in (await ok(acme.client.get(f"/members/{boris['id']}")))["groups"]
    ] == []


async def test_bulk_add_with_one_unknown_member_adds_nobody(acme: Workspace):
    anna = await member(acme.client, "Anna")
    backend = await group(acme.client, "Backend")
    ghost = "6f1c8a52-0000-4000-8000-000000000000"

    response = await acme.client.post(
        f"/groups/{backend['id']}/members/add", json={"member_ids": [anna["id"], ghost]}
    )
    assert response.status_code == 422
    assert fields_of(response.json()) == ["member_ids[1]"]
    assert (await ok(acme.client.get(f"/groups/{backend['id']}")))["member_count"] == 0


async def test_group_and_tag_names_are_unique_regardless_of_case(acme: Workspace):
    await group(acme.client, "Backend")
    await tag(acme.client, "VIP")
    for path, name in (("/groups", "backend"), ("/tags", "vip")):
        response = await acme.client.post(path, json={"name": name})
        assert response.status_code == 409
        assert fields_of(response.json()) == ["name"]
    design = await group(acme.client, "Design")
    renamed = await acme.client.patch(f"/groups/{design['id']}", json={"name": "BACKEND"})
    assert renamed.status_code == 409


async def test_tags_survive_leaving_a_group_and_unsubscribing(acme: Workspace):
    anna = await member(acme.client, "Anna")
    backend = await group(acme.client, "Backend", anna)
    await tag(acme.client, "python", anna)

    await ok(
        acme.client.post(
            f"/groups/{backend['id']}/members/remove", json={"member_ids": [anna["id"]]}
        )
    )
    await ok(acme.client.patch(f"/members/{anna['id']}", json={"status": "unsubscribed"}))
    await ok(acme.client.delete(f"/groups/{backend['id']}"), 204)

    assert [t["name"] for t in (await ok(acme.client.get(f"/members/{anna['id']}")))["tags"]] == [
        "python"
    ]


async def test_removing_a_tag_is_explicit_and_audited(acme: Workspace):
    anna = await member(acme.client, "Anna")
    python = await tag(acme.client, "python", anna)
    await ok(
        acme.client.post(f"/tags/{python['id']}/members/remove", json={"member_ids": [anna["id"]]})
    )
    rust = await tag(acme.client, "rust", anna)
    await ok(acme.client.delete(f"/tags/{rust['id']}"), 204)

    history = await ok(acme.client.get(f"/members/{anna['id']}/tag-history"))
    assert [(h["tag_name"], h["action"]) for h in history] == [
        ("python", "added"),
        ("python", "removed"),
        ("rust", "added"),
        ("rust", "removed"),
    ]
    assert {h["actor"] for h in history} == {"token:owner"}
    assert (await ok(acme.client.get(f"/members/{anna['id']}")))["tags"] == []


async def test_tag_list_counts_members(acme: Workspace):
    anna, boris = await member(acme.client, "Anna"), await member(acme.client, "Boris")
    await tag(acme.client, "vip", anna, boris)
    await tag(acme.client, "new")
    tags = await ok(acme.client.get("/tags"))
    assert [(t["name"], t["member_count"]) for t in tags["items"]] == [("new", 0), ("vip", 2)]
    found = await ok(acme.client.get("/tags", params={"q": "VI"}))
    assert [t["name"] for t in found["items"]] == ["vip"]


async def test_custom_roles_are_owner_business(acme: Workspace, client_for):
    lead = client_for((await ok(acme.client.post("/tokens", json={"name": "l"}), 201))["token"])

    assert (await lead.post("/roles", json={"name": "designer"})).status_code == 403
    designer = await ok(acme.client.post("/roles", json={"name": "designer"}), 201)
    assert designer["builtin"] is False
    assert (await acme.client.post("/roles", json={"name": "Designer"})).status_code == 409
    names = [r["name"] for r in await ok(lead.get("/roles"))]
    assert names == ["lead", "member", "owner", "designer"]

    owner = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "owner")
    refused = await acme.client.delete(f"/roles/{owner['id']}")
    assert refused.status_code == 422
    await ok(acme.client.delete(f"/roles/{designer['id']}"), 204)


@pytest.mark.parametrize("kind", ["groups", "tags"])
async def test_twenty_merges_at_once_merge_once_and_the_audit_log_says_so(
    acme: Workspace, kind: str
):
    anna = await member(acme.client, "Anna")
    make = group if kind == "groups" else tag
    source = await make(acme.client, "Sopranos", anna)
    target = await make(acme.client, "Choir")
    answers = await asyncio.gather(
        *(
            acme.client.post(f"/{kind}/{source['id']}/merge", json={"into": target["id"]})
            for _ in range(20)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] + [404] * 19
    audit = await ok(acme.client.get("/audit"))
    merged = [e for e in audit if e["action"].endswith(".merged")]
    assert len(merged) == 1
    assert "'Sopranos' merged into 'Choir'" in merged[0]["summary"]


async def test_the_largest_bulk_request_goes_through(acme: Workspace, engine: AsyncEngine):
    """10,000 ids (the documented maximum) once were 50,000 query parameters: a 500."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO members (id, workspace_id, name, timezone, locale, preferred_time, "
                "status, created_at, updated_at) SELECT gen_random_uuid(), :ws, 'M' || i, 'UTC', "
                "'en', 'day', 'active', now(), now() FROM generate_series(1, 10000) i"
            ),
            {"ws": acme.id},
        )
        ids = [str(i) for i in await conn.scalars(text("SELECT id FROM members"))]
    many = {"member_ids": ids}
    vip = await tag(acme.client, "vip")
    assert await ok(acme.client.post(f"/tags/{vip['id']}/members/add", json=many)) == {
        "changed": 10_000,
        "unchanged": 0,
    }
    crowd = await group(acme.client, "Crowd")
    assert await ok(acme.client.post(f"/groups/{crowd['id']}/members/add", json=many)) == {
        "changed": 10_000,
        "unchanged": 0,
    }
    removed = await ok(acme.client.post(f"/tags/{vip['id']}/members/remove", json=many))
    assert removed == {"changed": 10_000, "unchanged": 0}
    too_many = {"member_ids": [*ids, ids[0]]}
    refused = await acme.client.post(f"/groups/{crowd['id']}/members/add", json=too_many)
    assert refused.status_code == 422 and fields_of(refused.json()) == ["member_ids"]
