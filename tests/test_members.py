"""A lead manages the workspace's people through the API."""

from __future__ import annotations

from tests.conftest import Workspace
from tests.factories import fields_of, group, member, ok, role_id, tag


async def test_lead_adds_a_member_who_gets_the_member_role_and_workspace_zone(acme: Workspace):
    anna = await member(acme.client, "Anna Petrova", email="Anna@Example.com", telegram_user_id=42)

    assert anna["timezone"] == "Europe/Moscow"
    assert anna["email"] == "anna@example.com"
    assert [r["name"] for r in anna["roles"]] == ["member"]
    assert anna["status"] == "active"
    fetched = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert fetched == anna


async def test_member_preferences_are_stored_and_can_be_cleared(acme: Workspace):
    anna = await member(
        acme.client,
        "Anna",
        timezone="Asia/Yekaterinburg",
        locale="ru",
        quiet_hours={"start": "22:00", "end": "08:00"},
        preferred_time="evening",
    )
    assert anna["quiet_hours"] == {"start": "22:00", "end": "08:00"}
    assert (anna["locale"], anna["preferred_time"]) == ("ru", "evening")

    patched = await ok(
        acme.client.patch(
            f"/members/{anna['id']}", json={"quiet_hours": None, "status": "unsubscribed"}
        )
    )
    assert patched["quiet_hours"] is None
    assert patched["status"] == "unsubscribed"
    assert patched["timezone"] == "Asia/Yekaterinburg"


async def test_member_list_pages_and_filters(acme: Workspace, globex: Workspace):
    people = [await member(acme.client, f"Person {i:02}") for i in range(7)]
    backend = await group(acme.client, "Backend", people[1], people[3])
    vip = await tag(acme.client, "vip", people[3], people[5])
    await ok(acme.client.patch(f"/members/{people[6]['id']}", json={"status": "unreachable"}))

    page = await ok(acme.client.get("/members", params={"limit": 3, "offset": 3}))
    assert page["total"] == 7
    assert [m["name"] for m in page["items"]] == ["Person 03", "Person 04", "Person 05"]
    past_the_end = await ok(acme.client.get("/members", params={"limit": 3, "offset": 30}))
    assert (past_the_end["total"], past_the_end["items"]) == (7, [])

    in_backend = await ok(acme.client.get("/members", params={"group_id": backend["id"]}))
    assert [m["name"] for m in in_backend["items"]] == ["Person 01", "Person 03"]
    both = await ok(
        acme.client.get("/members", params={"group_id": backend["id"], "tag_id": vip["id"]})
    )
    assert [m["name"] for m in both["items"]] == ["Person 03"]
    unreachable = await ok(acme.client.get("/members", params={"status": "unreachable"}))
    assert [m["name"] for m in unreachable["items"]] == ["Person 06"]
    search = await ok(acme.client.get("/members", params={"q": "son 0_"}))
    assert search["total"] == 0  # '_' is literal, not a wildcard
    lead = await role_id(acme.client, "lead")
    await ok(acme.client.patch(f"/members/{people[4]['id']}", json={"role_ids": [lead]}))
    leads = await ok(acme.client.get("/members", params={"role_id": lead, "q": "person"}))
    assert [m["name"] for m in leads["items"]] == ["Person 04"]
    # Each combination of filters is its own statement, built once: the same filters with
    # other values (another group, another workspace) find their own members.
    others = await group(acme.client, "Others", people[0])
    in_others = await ok(acme.client.get("/members", params={"group_id": others["id"]}))
    assert [m["name"] for m in in_others["items"]] == ["Person 00"]
    theirs = await group(globex.client, "Backend", await member(globex.client, "Person 99"))
    in_theirs = await ok(globex.client.get("/members", params={"group_id": theirs["id"]}))
    assert [m["name"] for m in in_theirs["items"]] == ["Person 99"]
    not_theirs = await ok(globex.client.get("/members", params={"group_id": backend["id"]}))
    assert (not_theirs["total"], not_theirs["items"]) == (0, [])


async def test_duplicate_telegram_id_or_email_is_a_conflict_naming_the_field(acme: Workspace):
    await member(acme.client, "Anna", telegram_user_id=42, email="anna@example.com")

    again = await acme.client.post("/members", json={"name": "Other", "telegram_user_id": 42})
    assert again.status_code == 409
    assert fields_of(again.json()) == ["telegram_user_id"]
    same_mail = await acme.client.post("/members", json={"name": "X", "email": "ANNA@example.com"})
    assert same_mail.status_code == 409
    assert fields_of(same_mail.json()) == ["email"]


async def test_bad_member_input_names_the_field(acme: Workspace):
    cases = [
        ({"name": ""}, "name"),
        ({"name": "A", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "A", "email": "not-an-email"}, "email"),
        ({"name": "A", "locale": "xx"}, "locale"),
        ({"name": "A", "quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"name": "A", "role_ids": ["00000000-0000-0000-0000-000000000000"]}, "role_ids[0]"),
        ({"name": "A", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = await acme.client.post("/members", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert field in fields_of(response.json()), (body, response.json())
    listed = await ok(acme.client.get("/members"))
    assert listed["total"] == 0  # nothing half-written


async def test_a_lead_cannot_make_anyone_owner_but_the_owner_can(acme: Workspace, client_for):
    created = await ok(acme.client.post("/tokens", json={"name": "lead", "role": "lead"}), 201)
    lead = client_for(created["token"])
    owner_role = await role_id(acme.client, "owner")
    anna = await member(lead, "Anna")

    refused = await lead.patch(f"/members/{anna['id']}", json={"role_ids": [owner_role]})
    assert refused.status_code == 403
    assert [r["name"] for r in (await ok(lead.get(f"/members/{anna['id']}")))["roles"]] == [
        "member"
    ]

    granted = await ok(acme.client.patch(f"/members/{anna['id']}", json={"role_ids": [owner_role]}))
    assert [r["name"] for r in granted["roles"]] == ["owner"]


async def test_deleting_a_member(acme: Workspace):
    anna = await member(acme.client, "Anna")
    await ok(acme.client.delete(f"/members/{anna['id']}"), 204)
    assert (await acme.client.get(f"/members/{anna['id']}")).status_code == 404


async def test_telegram_user_id_is_a_shorthand_for_the_members_telegram_account(acme: Workspace):
    anna = await member(acme.client, "Anna", telegram_user_id=4_200_000_001)
    assert anna["telegram_user_id"] == 4_200_000_001
    assert anna["accounts"] == [{"messenger": "telegram", "external_id": "4200000001"}]
    # Another member cannot take the account; the owner can move or remove it.
    bob = await member(acme.client, "Bob")
    clash = await acme.client.patch(
        f"/members/{bob['id']}", json={"telegram_user_id": 4_200_000_001}
    )
    assert clash.status_code == 409 and "telegram_user_id" in clash.text
    moved = await ok(acme.client.patch(f"/members/{anna['id']}", json={"telegram_user_id": 77}))
    assert moved["accounts"] == [{"messenger": "telegram", "external_id": "77"}]
    gone = await ok(acme.client.patch(f"/members/{anna['id']}", json={"telegram_user_id": None}))
    assert (gone["telegram_user_id"], gone["accounts"]) == (None, [])
    # Freed, the account can be someone else's.
    taken = await ok(acme.client.patch(f"/members/{bob['id']}", json={"telegram_user_id": 77}))
    assert taken["telegram_user_id"] == 77


async def test_a_member_with_two_messengers_reads_the_same_in_the_list_and_alone(acme: Workspace):
    anna = await member(acme.client, "Anna", telegram_user_id=4_200_000_001, max_user_id=9001)
    assert (anna["telegram_user_id"], anna["max_user_id"]) == (4_200_000_001, 9001)
    assert sorted(a["messenger"] for a in anna["accounts"]) == ["max", "telegram"]
    listed = await ok(acme.client.get("/members", params={"q": "Anna"}))
    assert listed["items"] == [anna] == [await ok(acme.client.get(f"/members/{anna['id']}"))]
