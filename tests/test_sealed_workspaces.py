"""A token of one workspace can neither see nor touch another workspace's rows."""

from __future__ import annotations

from tests.conftest import Workspace
from tests.factories import group, member, ok, tag


async def _their_rows(globex: Workspace) -> dict[str, str]:
    c = globex.client
    person = await member(c, "Outsider", telegram_user_id=7)
    grp = await group(c, "Sales", person)
    tg = await tag(c, "secret", person)
    event = await ok(
        c.post("/events", json={"title": "Board", "starts_at": "2026-12-01T10:00"}), 201
    )
    token = await ok(c.post("/tokens", json={"name": "theirs"}), 201)
    role = await ok(c.post("/roles", json={"name": "auditor"}), 201)
    return {
        "members": person["id"],
        "groups": grp["id"],
        "tags": tg["id"],
        "events": event["id"],
        "tokens": token["id"],
        "roles": role["id"],
    }


async def test_every_id_of_another_workspace_is_not_found(acme: Workspace, globex: Workspace):
    theirs = await _their_rows(globex)
    a = acme.client
    for kind in ("members", "groups", "tags", "events"):
        ident = theirs[kind]
        assert (await a.get(f"/{kind}/{ident}")).status_code == 404, kind
        assert (
            await a.patch(f"/{kind}/{ident}", json={"name": "mine", "title": "mine"})
        ).status_code in (
            404,
            422,
        ), kind
        assert (await a.delete(f"/{kind}/{ident}")).status_code == 404, kind
    assert (await a.get(f"/members/{theirs['members']}/tag-history")).status_code == 404
    assert (await a.get(f"/groups/{theirs['groups']}/members")).status_code == 404
    assert (await a.get(f"/events/{theirs['events']}/occurrences")).status_code == 404
    assert (await a.delete(f"/tokens/{theirs['tokens']}")).status_code == 404
    assert (await a.delete(f"/roles/{theirs['roles']}")).status_code == 404

    # Nothing of theirs changed.
    assert (await ok(globex.client.get(f"/members/{theirs['members']}")))["name"] == "Outsider"
    assert (await ok(globex.client.get(f"/events/{theirs['events']}")))["title"] == "Board"
    assert all(t["revoked_at"] is None for t in await ok(globex.client.get("/tokens")))


async def test_patch_of_a_foreign_id_is_404_with_a_valid_body(acme: Workspace, globex: Workspace):
    theirs = await _their_rows(globex)
    bodies = {
        "members": {"name": "Hijacked"},
        "groups": {"name": "Hijacked"},
        "tags": {"name": "hijacked"},
        "events": {"title": "Hijacked"},
    }
    for kind, body in bodies.items():
        assert (await acme.client.patch(f"/{kind}/{theirs[kind]}", json=body)).status_code == 404, (
            kind
        )


async def test_cannot_mix_members_across_workspaces(acme: Workspace, globex: Workspace):
    theirs = await _their_rows(globex)
    mine = await member(acme.client, "Anna")
    my_group = await group(acme.client, "Backend")
    my_tag = await tag(acme.client, "python")

    for path in (f"/groups/{my_group['id']}/members/add", f"/tags/{my_tag['id']}/members/add"):
        response = await acme.client.post(
            path, json={"member_ids": [mine["id"], theirs["members"]]}
        )
        assert response.status_code == 422, path
    their_group_add = await acme.client.post(
        f"/groups/{theirs['groups']}/members/add", json={"member_ids": [mine["id"]]}
    )
    assert their_group_add.status_code == 404
    assert (await ok(acme.client.get(f"/groups/{my_group['id']}")))["member_count"] == 0
    assert (await ok(globex.client.get(f"/groups/{theirs['groups']}")))["member_count"] == 1
    role_grab = await acme.client.patch(
        f"/members/{mine['id']}", json={"role_ids": [theirs["roles"]]}
    )
    assert role_grab.status_code == 422


async def test_lists_show_only_own_rows(acme: Workspace, globex: Workspace):
    await _their_rows(globex)
    await member(acme.client, "Anna")
    for kind in ("members", "groups", "tags", "events"):
        page = await ok(acme.client.get(f"/{kind}"))
        names = [row.get("name", row.get("title")) for row in page["items"]]
        assert "Outsider" not in names and "Sales" not in names and "secret" not in names
        assert "Board" not in names
    assert [t["name"] for t in await ok(acme.client.get("/tokens"))] == ["owner"]
    assert "auditor" not in [r["name"] for r in await ok(acme.client.get("/roles"))]


async def test_unknown_list_filters_are_refused(acme: Workspace):
    response = await acme.client.get("/members", params={"telegram_user_id": 7})
    assert response.status_code == 422
