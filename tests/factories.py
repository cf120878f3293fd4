"""Arrange data through the API, as a user would."""

from __future__ import annotations

from typing import Any

import httpx

from emulators.telegram import BotApiEmulator

# The Bot API emulators of the running test (the conftest fixture registers its own). A bot cannot
# write first, so a member made with a Telegram account has opened the bot (pressed Start) in
# them, unless made with ``started=False``: someone a lead added who never did.
EMULATORS: list[BotApiEmulator] = []


async def ok(response_awaitable: Any, status: int = 200) -> Any:
    response: httpx.Response = await response_awaitable
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def member(
    client: httpx.AsyncClient, name: str, *, started: bool = True, **fields: Any
) -> dict[str, Any]:
    made: dict[str, Any] = await ok(client.post("/members", json={"name": name, **fields}), 201)
    if started and made.get("telegram_user_id") is not None:
        for emulator in EMULATORS:
            emulator.introduce(int(made["telegram_user_id"]))
    return made


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
