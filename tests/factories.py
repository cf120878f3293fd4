"""Arrange data through the API, as a user would."""

from __future__ import annotations

from typing import Any

import httpx


async def ok(response_awaitable: Any, status: int = 200) -> Any:
    response: httpx.Response = await response_awaitable
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def member(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    return await ok(client.post("/members", json={"name": name, **fields}), 201)  # type: ignore[no-any-return]


async def group(client: httpx.AsyncClient, name: str, *members: dict[str, Any]) -> dict[str, Any]:
    created = await ok(client.post("/groups", json={"name": name}), 201)
    if members:
        await ok(
            client.post(
                f"/groups/{created['id']}/members/add",
                json={"member_ids": [m["id"] for m in members]},
            )
        )
    return created  # type: ignore[no-any-return]


async def tag(client: httpx.AsyncClient, name: str, *members: dict[str, Any]) -> dict[str, Any]:
    created = await ok(client.post("/tags", json={"name": name}), 201)
    if members:
        await ok(
            client.post(
                f"/tags/{created['id']}/members/add",
                json={"member_ids": [m["id"] for m in members]},
            )
        )
    return created  # type: ignore[no-any-return]


async def role_id(client: httpx.AsyncClient, name: str) -> str:
    roles = await ok(client.get("/roles"))
    return next(r["id"] for r in roles if r["name"] == name)  # type: ignore[no-any-return]


def fields_of(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem.get("errors", [])]
