"""Who would this audience reach? Groups, tags, roles or people, minus exclusions."""

from __future__ import annotations

import pytest

from core.audience.rule import AudienceRule, preview_audience
from core.teams.permissions import system_actor
from tests.conftest import Workspace
from tests.factories import fields_of, group, member, ok, role_id, tag


async def _team(ws: Workspace) -> dict[str, dict]:
    c = ws.client
    people = {n: await member(c, n) for n in ("Anna", "Boris", "Dina", "Egor", "Fedor", "Vera")}
    await group(c, "Backend", people["Anna"], people["Boris"])
    await group(c, "Design", people["Vera"])
    await tag(c, "python", people["Anna"], people["Dina"], people["Egor"])
    await tag(c, "senior", people["Anna"], people["Egor"])
    await tag(c, "on-leave", people["Boris"])
    return people


async def _ids(ws: Workspace, kind: str) -> dict[str, str]:
    page = await ok(ws.client.get(f"/{kind}"))
    return {row["name"]: row["id"] for row in page["items"]}


async def _reach(ws: Workspace, rule: dict) -> list[str]:
    preview = await ok(ws.client.post("/audience/preview", json=rule))
    names = [m["name"] for m in preview["members"]]
    assert preview["count"] == len(names)
    return names


async def test_union_of_groups_tags_roles_and_people_minus_exclusions(acme: Workspace):
    people = await _team(acme)
    groups, tags = await _ids(acme, "groups"), await _ids(acme, "tags")
    lead = await role_id(acme.client, "lead")
    await ok(acme.client.patch(f"/members/{people['Fedor']['id']}", json={"role_ids": [lead]}))

    assert await _reach(acme, {"groups": [groups["Backend"]]}) == ["Anna", "Boris"]
    assert await _reach(acme, {"tags": [tags["python"], tags["senior"]]}) == [
        "Anna",
        "Dina",
        "Egor",
    ]
    assert await _reach(acme, {"tags": [tags["python"], tags["senior"]], "tags_mode": "all"}) == [
        "Anna",
        "Egor",
    ]
    assert await _reach(acme, {"roles": [lead]}) == ["Fedor"]
    assert await _reach(
        acme,
        {
            "groups": [groups["Backend"], groups["Design"]],
            "tags": [tags["python"]],
            "roles": [lead],
            "members": [people["Anna"]["id"]],
            "exclude_tags": [tags["on-leave"]],
            "exclude_groups": [groups["Design"]],
            "exclude_members": [people["Egor"]["id"]],
        },
    ) == ["Anna", "Dina", "Fedor"]
    assert await _reach(acme, {}) == []


async def test_preview_counts_by_status_and_caps_the_list(acme: Workspace):
    people = await _team(acme)
    tags = await _ids(acme, "tags")
    await ok(acme.client.patch(f"/members/{people['Dina']['id']}", json={"status": "unsubscribed"}))
    await ok(acme.client.patch(f"/members/{people['Egor']['id']}", json={"status": "unreachable"}))

    preview = await ok(
        acme.client.post("/audience/preview", json={"tags": [tags["python"]], "limit": 1})
    )
    assert preview["count"] == 3
    assert preview["by_status"] == {"total": 3, "active": 1, "unsubscribed": 1, "unreachable": 1}
    assert [m["name"] for m in preview["members"]] == ["Anna"]


async def test_audience_naming_another_workspace_is_refused(acme: Workspace, globex: Workspace):
    await _team(acme)
    their = await member(globex.client, "Outsider")
    their_group = await group(globex.client, "Sales", their)

    response = await acme.client.post(
        "/audience/preview", json={"groups": [their_group["id"]], "members": [their["id"]]}
    )
    assert response.status_code == 422
    assert fields_of(response.json()) == ["audience.groups[0]", "audience.members[0]"]


@pytest.mark.parametrize("window", [1, 2, 4, 7])
async def test_the_first_names_are_the_same_whatever_part_of_the_alphabet_is_probed(
    acme: Workspace, session, window: int
):
    """A preview looks for its first names among the workspace's first members by name and
    falls back to the whole audience when they are not all there: every rule, with windows
    smaller than the team, gives the page the unwindowed preview gives (and reads the same)."""
    people = await _team(acme)
    groups, tags = await _ids(acme, "groups"), await _ids(acme, "tags")
    lead = await role_id(acme.client, "lead")
    await ok(acme.client.patch(f"/members/{people['Vera']['id']}", json={"role_ids": [lead]}))
    rules = [
        {"groups": [groups["Backend"]]},
        {"groups": [groups["Design"]]},
        {"tags": [tags["python"], tags["senior"]], "tags_mode": "all"},
        {"tags": [tags["python"]], "exclude_members": [people["Anna"]["id"]]},
        {"roles": [lead], "members": [people["Fedor"]["id"]]},
        {"members": [people["Vera"]["id"], people["Boris"]["id"]]},
        {
            "groups": [groups["Backend"]],
            "tags": [tags["python"]],
            "exclude_tags": [tags["on-leave"]],
        },
        {"tags": [tags["python"]], "exclude_groups": [groups["Backend"]]},
        {},
    ]
    actor = system_actor(acme.id)
    for raw in rules:
        rule = AudienceRule.model_validate(raw)
        for limit in (1, 2, 20):
            windowed = await preview_audience(session, actor, rule, limit, window=window)
            whole = await preview_audience(session, actor, rule, limit, window=1000)
            assert windowed == whole, (raw, limit)
            assert len(whole.members) == min(limit, whole.count)
