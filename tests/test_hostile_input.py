"""Input a hostile client sends gets a 4xx naming the field: never a 500, never a half-written
change."""

from __future__ import annotations

import pytest

from tests.conftest import Workspace
from tests.factories import fields_of, ok

NUL = "a\u0000b"


@pytest.mark.parametrize("path", ["/members", "/groups", "/tags", "/events"])
async def test_a_nul_in_a_search_is_a_422_naming_it(acme: Workspace, path: str):
    response = await acme.client.get(path, params={"q": NUL})
    assert response.status_code == 422, response.text
    assert fields_of(response.json()) == ["q"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/members", {"name": NUL}, "name"),
        ("/groups", {"name": NUL}, "name"),
        ("/tags", {"name": NUL}, "name"),
        ("/roles", {"name": NUL}, "name"),
        ("/events", {"title": NUL, "starts_at": "2026-12-07T10:00"}, "title"),
        ("/templates", {"name": NUL, "text": "Hi"}, "name"),
        ("/templates", {"name": "t", "text": "Hi", "variants": {"ru": NUL}}, "variants.ru"),
        (
            "/templates",
            {"name": "t", "text": "Hi", "buttons": [{"text": NUL, "url": "https://x.org"}]},
            "buttons[0].text",
        ),
        ("/tokens", {"name": NUL, "role": "member"}, "name"),
    ],
)
async def test_a_nul_in_a_body_is_a_422_naming_the_field_and_nothing_is_written(
    acme: Workspace, path: str, body: dict, field: str
):
    before = (await acme.client.get(path)).text
    response = await acme.client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert fields_of(response.json()) == [field]
    assert "NUL" in response.json()["detail"]
    assert (await acme.client.get(path)).text == before


@pytest.mark.parametrize("path", ["/members", "/groups", "/tags", "/events"])
async def test_an_offset_past_64_bits_is_a_422(acme: Workspace, path: str):
    response = await acme.client.get(path, params={"offset": "99999999999999999999"})
    assert response.status_code == 422, response.text
    assert fields_of(response.json()) == ["offset"]


async def test_a_telegram_id_past_64_bits_is_a_422(acme: Workspace):
    for body in ({"name": "Anna", "telegram_user_id": 2**63}, {"name": "Anna"}):
        response = await acme.client.post("/members", json=body)
        if "telegram_user_id" in body:
            assert response.status_code == 422 and fields_of(response.json()) == [
                "telegram_user_id"
            ]
        else:
            anna = response.json()
    patched = await acme.client.patch(f"/members/{anna['id']}", json={"telegram_user_id": 10**30})
    assert patched.status_code == 422 and fields_of(patched.json()) == ["telegram_user_id"]
    assert (await ok(acme.client.get(f"/members/{anna['id']}")))["telegram_user_id"] is None


async def test_renaming_a_template_to_a_taken_name_is_a_409_and_changes_nothing(acme: Workspace):
    await ok(acme.client.post("/templates", json={"name": "Welcome", "text": "Hi"}), 201)
    other = await ok(acme.client.post("/templates", json={"name": "Later", "text": "Bye"}), 201)
    renamed = await acme.client.patch(
        f"/templates/{other['id']}", json={"name": "Welcome", "text": "Changed"}
    )
    assert renamed.status_code == 409, renamed.text
    assert fields_of(renamed.json()) == ["name"]
    kept = await ok(acme.client.get(f"/templates/{other['id']}"))
    assert (kept["name"], kept["text"]) == ("Later", "Bye")
