"""Every role against every action, through the REST API with a real token of that role: what
each may do, and that a refusal is a 403 that changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from core.teams.builtin_roles import BuiltinRole
from core.teams.permissions import _ALLOWED, Action
from tests.conftest import ClientFor, Workspace
from tests.factories import member, ok, role_id

Attempt = Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[httpx.Response]]


async def _read(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.get("/members")


async def _manage_people(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.post("/groups", json={"name": f"group by {s['role']}"})


async def _manage_events(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    event = {"title": "Sync", "starts_at": "2027-03-01T10:00:00Z", "audience": {}}
    return await c.post("/events", json=event)


async def _manage_roles(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.post("/roles", json={"name": f"role by {s['role']}"})


async def _grant_owner(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.patch(f"/members/{s['anna']}", json={"role_ids": [s["owner_role"]]})


async def _link_messenger(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.patch(f"/members/{s['anna']}", json={"telegram_user_id": 555})


async def _manage_tokens(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.post("/tokens", json={"name": f"by {s['role']}", "role": "member"})


async def _manage_workspace(c: httpx.AsyncClient, s: dict[str, Any]) -> httpx.Response:
    return await c.patch("/workspace", json={"timezone": "Asia/Tokyo"})


ATTEMPTS: dict[Action, Attempt] = {
    Action.read: _read,
    Action.manage_people: _manage_people,
    Action.manage_events: _manage_events,
    Action.manage_roles: _manage_roles,
    Action.grant_owner: _grant_owner,
    Action.link_messenger: _link_messenger,
    Action.manage_tokens: _manage_tokens,
    Action.manage_workspace: _manage_workspace,
}
# The matrix as the README states it (owner: everything; lead: people, groups, tags, events;
# member: read-only), written out so a change to the rules has to change this table too.
EXPECTED = {
    BuiltinRole.owner: set(Action),
    BuiltinRole.lead: {Action.read, Action.manage_people, Action.manage_events},
    BuiltinRole.member: {Action.read},
}


def test_every_action_is_tried_and_the_table_is_the_rule():
    assert set(ATTEMPTS) == set(Action)
    assert {role: set(actions) for role, actions in _ALLOWED.items()} == EXPECTED


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.name)
@pytest.mark.parametrize("role", list(BuiltinRole), ids=lambda r: r.value)
async def test_role_may_or_may_not(
    role: BuiltinRole, action: Action, acme: Workspace, client_for: ClientFor
):
    anna = await member(acme.client, "Anna")
    setup = {
        "role": role.value,
        "anna": anna["id"],
        "owner_role": await role_id(acme.client, "owner"),
    }
    if role is BuiltinRole.owner:
        client = acme.client
    else:
        token = await ok(acme.client.post("/tokens", json={"name": role.value, "role": role}), 201)
        client = client_for(token["token"])
    before = await ok(acme.client.get(f"/members/{anna['id']}"))

    response = await ATTEMPTS[action](client, setup)

    if action in EXPECTED[role]:
        assert response.status_code < 300, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
        assert await ok(acme.client.get(f"/members/{anna['id']}")) == before
