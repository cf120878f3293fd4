"""Signals from other systems: named by member id or external id, safe to retry with a key,
sealed per workspace, counted as activity and shown in the member's timeline."""

from __future__ import annotations

from tests.conftest import ClientFor, Workspace
from tests.factories import fields_of, member, ok


async def test_a_crm_posts_progress_by_its_own_id_and_a_retry_records_nothing_new(
    acme: Workspace,
):
    anna = await member(acme.client, "Anna", external_id="crm-42")
    assert anna["external_id"] == "crm-42" and anna["last_activity_at"] is None

    signal = {"external_id": "crm-42", "name": "progress", "value": 20, "key": "evt-1"}
    first = await ok(acme.client.post("/signals", json=signal), 201)
    assert (first["member_id"], first["name"], first["value"]) == (anna["id"], "progress", 20)
    again = await ok(acme.client.post("/signals", json=signal), 200)
    assert again["id"] == first["id"]
    changed = await acme.client.post("/signals", json=signal | {"value": 30})
    assert changed.status_code == 409 and fields_of(changed.json()) == ["key"]

    bought = await ok(
        acme.client.post("/signals", json={"member_id": anna["id"], "name": "bought"}), 201
    )
    assert bought["value"] is None
    after = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert after["last_activity_at"] is not None  # inactivity is counted from here
    timeline = await ok(acme.client.get(f"/members/{anna['id']}/timeline"))
    shown = [i["summary"] for i in timeline["items"] if i["kind"] == "signal"]
    assert len(shown) == 2 and any(s.startswith("signal progress = 20") for s in shown)


async def test_external_ids_are_unique_per_workspace_and_bad_signals_name_the_field(
    acme: Workspace, globex: Workspace
):
    await member(acme.client, "Anna", external_id="crm-42")
    clash = await acme.client.post("/members", json={"name": "Other", "external_id": "crm-42"})
    assert clash.status_code == 409 and fields_of(clash.json()) == ["external_id"]
    await member(globex.client, "Gleb", external_id="crm-42")  # another workspace: its own ids

    cases = [
        ({"external_id": "nobody", "name": "progress"}, "external_id"),
        ({"name": "progress"}, "body"),
        (
            {
                "external_id": "crm-42",
                "member_id": "00000000-0000-0000-0000-000000000000",
                "name": "x",
            },
            "body",
        ),
        ({"external_id": "crm-42", "name": "Progress!"}, "name"),
        ({"external_id": "crm-42", "name": "progress", "value": "lots"}, "value"),
        ({"external_id": "crm-42", "name": "progress", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        response = await acme.client.post("/signals", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in fields_of(response.json()), (body, response.json())


async def test_signals_are_sealed_between_workspaces_and_need_a_lead(
    acme: Workspace, globex: Workspace, client_for: ClientFor
):
    anna = await member(acme.client, "Anna", external_id="crm-42")
    theirs = await globex.client.post("/signals", json={"member_id": anna["id"], "name": "bought"})
    assert theirs.status_code == 422 and fields_of(theirs.json()) == ["member_id"]
    token = await ok(acme.client.post("/tokens", json={"name": "viewer", "role": "member"}), 201)
    viewer = client_for(token["token"])
    refused = await viewer.post("/signals", json={"member_id": anna["id"], "name": "bought"})
    assert refused.status_code == 403
    timeline = await ok(acme.client.get(f"/members/{anna['id']}/timeline"))
    assert [i for i in timeline["items"] if i["kind"] == "signal"] == []
