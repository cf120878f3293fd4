"""Nobody acts above their role by changing someone's identity: messenger accounts are the owner's
to change (or the person's own, through the messenger), nobody touches the email, roles or record
of someone above them, and a workspace never loses its last owner."""

from __future__ import annotations

import pytest

from tests.conftest import ClientFor, Workspace
from tests.factories import member, ok, role_id
from tests.webapp_helpers import init_data, sign_in


async def _people(acme: Workspace, client_for: ClientFor):
    """An owner (Olga), a lead (Lena) with a lead token, and a member (Max)."""
    owner = await member(
        acme.client,
        "Olga Owner",
        telegram_user_id=7001,
        email="olga@example.com",
        role_ids=[await role_id(acme.client, "owner")],
    )
    lead = await member(
        acme.client,
        "Lena Lead",
        telegram_user_id=7002,
        email="lena@example.com",
        role_ids=[await role_id(acme.client, "lead")],
    )
    plain = await member(acme.client, "Max Member", telegram_user_id=7003, email="max@example.com")
    token = await ok(acme.client.post("/tokens", json={"name": "lead", "role": "lead"}), 201)
    return {"owner": owner, "lead": lead, "member": plain}, client_for(token["token"])


@pytest.mark.parametrize("target", ["owner", "lead", "member"])
@pytest.mark.parametrize(
    "change", [{"telegram_user_id": 9999}, {"telegram_user_id": None}], ids=["relink", "unlink"]
)
async def test_only_an_owner_changes_a_messenger_account(
    acme: Workspace, client_for: ClientFor, target: str, change: dict
):
    people, lead = await _people(acme, client_for)
    victim = people[target]
    refused = await lead.patch(f"/members/{victim['id']}", json=change)
    assert refused.status_code == 403, refused.text
    assert "messenger account" in refused.json()["detail"]
    after = await ok(acme.client.get(f"/members/{victim['id']}"))
    assert after["telegram_user_id"] == victim["telegram_user_id"]  # nothing written
    changed = await ok(acme.client.patch(f"/members/{victim['id']}", json=change))
    assert changed["telegram_user_id"] == change["telegram_user_id"]


@pytest.mark.parametrize(
    ("target", "allowed"), [("owner", False), ("lead", True), ("member", True)]
)
@pytest.mark.parametrize(
    "change",
    [{"email": "attacker@example.com"}, {"email": None}, {"role_ids": []}],
    ids=["email", "clear email", "roles"],
)
async def test_a_lead_changes_email_and_roles_only_of_people_not_above_them(
    acme: Workspace, client_for: ClientFor, target: str, allowed: bool, change: dict
):
    people, lead = await _people(acme, client_for)
    if change.get("role_ids") == []:
        change = {"role_ids": [await role_id(acme.client, "member")]}
    response = await lead.patch(f"/members/{people[target]['id']}", json=change)
    assert response.status_code == (200 if allowed else 403), response.text
    if not allowed:
        after = await ok(acme.client.get(f"/members/{people[target]['id']}"))
        assert after["email"] == people[target]["email"]
        assert [r["name"] for r in after["roles"]] == ["owner"]


@pytest.mark.parametrize(("target", "allowed"), [("owner", False), ("member", True)])
async def test_a_lead_removes_or_invites_only_people_not_above_them(
    acme: Workspace, client_for: ClientFor, target: str, allowed: bool
):
    people, lead = await _people(acme, client_for)
    victim = people[target]
    await ok(acme.client.patch(f"/members/{victim['id']}", json={"telegram_user_id": None}))
    invite = await lead.post("/invites", json={"member_id": victim["id"]})
    assert invite.status_code == (201 if allowed else 403), invite.text
    removed = await lead.delete(f"/members/{victim['id']}")
    assert removed.status_code == (204 if allowed else 403), removed.text
    still = await acme.client.get(f"/members/{victim['id']}")
    assert still.status_code == (404 if allowed else 200)


async def test_the_last_owner_cannot_be_removed_or_demoted(acme: Workspace, client_for):
    people, _ = await _people(acme, client_for)
    olga = people["owner"]
    member_role = await role_id(acme.client, "member")
    demoted = await acme.client.patch(f"/members/{olga['id']}", json={"role_ids": [member_role]})
    assert demoted.status_code == 409 and demoted.json()["errors"][0]["field"] == "role_ids"
    removed = await acme.client.delete(f"/members/{olga['id']}")
    assert removed.status_code == 409 and "last owner" in removed.json()["detail"]
    # With a second owner, the first may go.
    owner_role = await role_id(acme.client, "owner")
    await ok(acme.client.patch(f"/members/{people['lead']['id']}", json={"role_ids": [owner_role]}))
    await ok(acme.client.delete(f"/members/{olga['id']}"), 204)


async def test_a_lead_cannot_become_owner_by_taking_the_owners_telegram_account(
    acme: Workspace, client_for: ClientFor, site
):
    """The attack: relink the owner's record to the attacker's Telegram id, sign in to the Mini
    App as the owner and mint an owner token. Each step is refused."""
    people, lead = await _people(acme, client_for)
    attacker = 6666
    taken = await lead.patch(
        f"/members/{people['owner']['id']}", json={"telegram_user_id": attacker}
    )
    assert taken.status_code == 403
    forged = init_data({"id": attacker, "first_name": "Mallory"})
    response = await site.post("/app/auth", data={"init_data": forged})
    assert response.status_code != 204  # not a member at all
    # The lead's own sign-in stays a lead's: the admin pages are refused.
    csrf = await sign_in(site, {"id": 7002, "first_name": "Lena"})
    minted = await site.post(
        "/app/admin/tokens", data={"name": "mine", "role": "owner"}, headers={"X-CSRF-Token": csrf}
    )
    assert minted.status_code == 403
