"""Code words: matching as people type, negative phrases, tags and replies, sealed workspaces."""

from __future__ import annotations

import pytest

from core.meaning.text import normalize
from tests.conftest import Workspace
from tests.factories import fields_of, member, ok, tag


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("Хочу на МИТАП!!! 🎉", "хочу на митап"),
        ("  ещё   раз… ", "еще раз"),
        ("👍спасибо👍", "спасибо"),
        ("Спасибо, но нет.", "спасибо но нет"),
    ],
)
def test_normalize_sets_aside_case_punctuation_yo_and_emoji(typed: str, normal: str):
    assert normalize(typed) == normal


async def test_matching_modes_and_a_negative_phrase(acme: Workspace):
    thanks = await tag(acme.client, "thanked")
    await ok(
        acme.client.post(
            "/code-words",
            json={"phrase": "спасибо", "match": "contains", "tag_ids": [thanks["id"]]},
        ),
        201,
    )
    await ok(
        acme.client.post(
            "/code-words", json={"phrase": "спасибо, но нет", "match": "contains", "negative": True}
        ),
        201,
    )
    await ok(
        acme.client.post(
            "/code-words", json={"phrase": "PROMO-2026", "match": "exact", "reply": "Код принят"}
        ),
        201,
    )

    async def fired(text: str) -> tuple[str | None, list[str]]:
        hit = await ok(acme.client.post("/code-words/test", json={"text": text}))
        return hit["vetoed_by"], [w["phrase"] for w in hit["fired"]]

    assert await fired("Спасибо большое! 🙏") == (None, ["спасибо"])
    assert await fired("Спасибо, но нет 🙂") == ("спасибо, но нет", [])
    assert await fired("спасибочки") == (None, [])  # whole words only
    assert await fired("PROMO-2026") == (None, ["PROMO-2026"])
    assert await fired("promo 2026") == (None, [])  # exact means exact


async def test_bad_code_words_are_refused_naming_the_field(acme: Workspace, globex: Workspace):
    theirs = await tag(globex.client, "theirs")
    response = await acme.client.post(
        "/code-words", json={"phrase": "да", "tag_ids": [theirs["id"]]}
    )
    assert response.status_code == 422 and fields_of(response.json()) == ["tag_ids[0]"]
    response = await acme.client.post("/code-words", json={"phrase": "да"})
    assert response.status_code == 422
    response = await acme.client.post("/code-words", json={"phrase": "да", "reply": "{{ x }}"})
    assert response.status_code == 422 and fields_of(response.json()) == ["reply"]
    await ok(acme.client.post("/code-words", json={"phrase": "Да!", "reply": "ok"}), 201)
    response = await acme.client.post("/code-words", json={"phrase": "да", "reply": "again"})
    assert response.status_code == 409 and fields_of(response.json()) == ["phrase"]
    # Another workspace neither sees nor fires nor deletes it.
    assert await ok(globex.client.get("/code-words")) == []
    hit = await ok(globex.client.post("/code-words/test", json={"text": "да"}))
    assert hit["fired"] == []
    [word] = await ok(acme.client.get("/code-words"))
    assert (await globex.client.delete(f"/code-words/{word['id']}")).status_code == 404
    await ok(acme.client.delete(f"/code-words/{word['id']}"), 204)
    assert await ok(acme.client.get("/code-words")) == []
    assert (await member(acme.client, "x"))["name"] == "x"
