"""The lead's and owner's pages on the server: people (search, filters, bulk changes, invites),
groups and tags (create, rename, merge, delete after a confirm step), and the admin page (tokens,
workspace settings). Each with roles, CSRF and two sealed workspaces."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ClientFor, Workspace
from tests.factories import group, member, ok, role_id, tag
from tests.webapp_helpers import sign_in

LENA = {"id": 7001, "first_name": "Lena"}
OWEN = {"id": 7002, "first_name": "Owen"}
ANNA = {"id": 7003, "first_name": "Anna"}
GREG = {"id": 7004, "first_name": "Greg"}


async def _with_role(ws: Workspace, user: dict[str, Any], name: str, role: str) -> dict[str, Any]:
    return await member(
        ws.client, name, telegram_user_id=user["id"], role_ids=[await role_id(ws.client, role)]
    )


async def test_people_search_filter_and_bulk_changes(acme: Workspace, site: httpx.AsyncClient):
    await _with_role(acme, LENA, "Lena Lead", "lead")
    anna = await member(acme.client, "Anna Smirnova")
    boris = await member(acme.client, "Boris Lee")
    vera = await member(acme.client, "Vera Unsub")
    await ok(acme.client.patch(f"/members/{vera['id']}", json={"status": "unsubscribed"}))
    choir = await group(acme.client, "Choir", anna)
    alto = await tag(acme.client, "alto")
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}

    page = await site.get("/app/people")
    assert page.status_code == 200 and "4 of 4" in page.text and "Boris Lee" in page.text
    found = await site.get("/app/people", params={"q": "smir"}, headers={"HX-Request": "true"})
    assert "Anna Smirnova" in found.text and "Boris" not in found.text and "<nav" not in found.text
    in_choir = await site.get("/app/people", params={"group": choir["id"]})
    assert "1 of 1" in in_choir.text
    unsub = await site.get("/app/people", params={"status": "unsubscribed"})
    assert "Vera Unsub" in unsub.text and "1 of 1" in unsub.text

    form = {"action": "add_tag", "target": alto["id"], "member_ids": [anna["id"], boris["id"]]}
    assert (await site.post("/app/people/bulk", data=form)).status_code == 403  # no CSRF
    done = await site.post("/app/people/bulk", data=form, headers=headers)
    assert done.status_code == 200 and "2 changed" in done.text
    assert done.headers["HX-Trigger"] == "people-changed"
    tagged = await ok(acme.client.get("/members", params={"tag_id": alto["id"]}))
    assert {m["name"] for m in tagged["items"]} == {"Anna Smirnova", "Boris Lee"}
    again = await site.post("/app/people/bulk", data=form, headers=headers)
    assert "0 changed, 2 were already so" in again.text
    into_group = form | {"action": "add_group", "target": choir["id"]}
    assert (
        "1 changed" in (await site.post("/app/people/bulk", data=into_group, headers=headers)).text
    )

    nobody = await site.post(
        "/app/people/bulk", data={"action": "add_tag", "target": alto["id"]}, headers=headers
    )
    assert nobody.status_code == 422 and "Select at least one person" in nobody.text
    wrong_kind = form | {"action": "add_tag", "target": choir["id"]}  # a group id as a tag
    refused = await site.post("/app/people/bulk", data=wrong_kind, headers=headers)
    assert refused.status_code == 404


async def test_adding_a_person_and_copying_invite_links(acme: Workspace, site: httpx.AsyncClient):
    await _with_role(acme, LENA, "Lena Lead", "lead")
    choir = await group(acme.client, "Choir")
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}
    bad = await site.post(
        "/app/people/add", data={"name": "Ivan", "email": "not-an-email"}, headers=headers
    )
    assert bad.status_code == 422 and 'id="email-error"' in bad.text
    assert (await ok(acme.client.get("/members", params={"q": "Ivan"})))["total"] == 0
    added = await site.post("/app/people/add", data={"name": "Ivan Petrov"}, headers=headers)
    assert added.status_code == 200 and "Ivan Petrov" in added.text
    ivan = (await ok(acme.client.get("/members", params={"q": "Ivan"})))["items"][0]

    personal = await site.post(
        "/app/people/invite", data={"member_id": ivan["id"]}, headers=headers
    )
    assert personal.status_code == 200 and (
        "?start=i" in personal.text or "/start i" in personal.text
    )
    assert 'data-copy="invite-' in personal.text
    grouped = await site.post(
        "/app/people/invite",
        data={"group_id": choir["id"], "max_uses": "10", "expires_in_hours": "48"},
        headers=headers,
    )
    assert grouped.status_code == 200 and "Choir" in grouped.text
    invites = await ok(acme.client.get("/invites"))
    assert sorted(i["kind"] for i in invites) == ["group", "personal"]
    assert next(i for i in invites if i["kind"] == "group")["max_uses"] == 10
    typo = await site.post(
        "/app/people/invite", data={"group_id": choir["id"], "max_uses": "lots"}, headers=headers
    )
    assert typo.status_code == 422 and "Give a number" in typo.text


async def test_people_pages_are_for_leads_and_sealed(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    secret = await member(acme.client, "Acme Secret Person")
    alto = await tag(acme.client, "alto")
    await _with_role(globex, GREG, "Greg", "lead")
    await sign_in(site, ANNA)
    assert (await site.get("/app/people")).status_code == 403
    greg = {"X-CSRF-Token": await sign_in(site, GREG)}
    page = await site.get("/app/people")
    assert page.status_code == 200 and "Acme Secret Person" not in page.text
    steal = {"action": "add_tag", "target": alto["id"], "member_ids": [secret["id"]]}
    assert (await site.post("/app/people/bulk", data=steal, headers=greg)).status_code == 404
    invite = await site.post("/app/people/invite", data={"member_id": secret["id"]}, headers=greg)
    assert invite.status_code == 404
    assert (await ok(acme.client.get(f"/members/{secret['id']}")))["tags"] == []


async def test_groups_and_tags_merge_and_delete_after_a_confirm_step(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    await _with_role(acme, LENA, "Lena Lead", "lead")
    anna = await member(acme.client, "Anna")
    boris = await member(acme.client, "Boris")
    sopranos = await group(acme.client, "Sopranos", anna)
    choir = await group(acme.client, "Choir", boris)
    old = await tag(acme.client, "old-tag", anna)
    new = await tag(acme.client, "new-tag")
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Rehearsal",
                "starts_at": "2027-01-10T10:00:00+00:00",
                "audience": {"groups": [sopranos["id"]], "exclude_tags": [old["id"]]},
            },
        ),
        201,
    )
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}
    page = await site.get("/app/labels")
    assert "Sopranos" in page.text and "#" not in page.text.split("Sopranos")[0][-5:]

    created = await site.post("/app/labels/groups/new", data={"name": "Altos"}, headers=headers)
    assert created.status_code == 200 and "Altos" in created.text
    dupe = await site.post("/app/labels/groups/new", data={"name": "altos"}, headers=headers)
    assert dupe.status_code == 422 and 'id="new-groups-error"' in dupe.text
    renamed = await site.post(
        f"/app/labels/tags/{new['id']}/rename", data={"name": "fresh"}, headers=headers
    )
    assert renamed.status_code == 200 and 'value="fresh"' in renamed.text

    question = await site.post(
        f"/app/labels/groups/{sopranos['id']}/merge", data={"into": choir["id"]}, headers=headers
    )
    assert "Merge “Sopranos” into “Choir”? Its 1 member joins" in question.text
    assert (await ok(acme.client.get(f"/groups/{sopranos['id']}")))["name"] == "Sopranos"
    merged = await site.post(
        f"/app/labels/groups/{sopranos['id']}/merge",
        data={"into": choir["id"], "confirm": "yes"},
        headers=headers,
    )
    assert merged.status_code == 200 and "Sopranos" not in merged.text
    assert (await acme.client.get(f"/groups/{sopranos['id']}")).status_code == 404
    assert (await ok(acme.client.get(f"/groups/{choir['id']}")))["member_count"] == 2
    await site.post(
        f"/app/labels/tags/{old['id']}/merge",
        data={"into": new["id"], "confirm": "yes"},
        headers=headers,
    )
    moved = await ok(acme.client.get(f"/events/{event['id']}"))
    assert moved["audience"]["groups"] == [choir["id"]]  # nobody dropped out of the rehearsal
    assert moved["audience"]["exclude_tags"] == [new["id"]]
    history = await ok(acme.client.get(f"/members/{anna['id']}/tag-history"))
    assert [(h["tag_name"], h["action"]) for h in history][-2:] == [
        ("old-tag", "removed"),
        ("fresh", "added"),
    ]

    ask = await site.post(f"/app/labels/groups/{choir['id']}/delete", headers=headers)
    assert "Delete the group “Choir”? 2 members leave it" in ask.text
    assert (await ok(acme.client.get(f"/groups/{choir['id']}")))["name"] == "Choir"
    gone = await site.post(
        f"/app/labels/groups/{choir['id']}/delete", data={"confirm": "yes"}, headers=headers
    )
    assert gone.status_code == 200
    assert (await acme.client.get(f"/groups/{choir['id']}")).status_code == 404

    await _with_role(globex, GREG, "Greg", "lead")
    greg = {"X-CSRF-Token": await sign_in(site, GREG)}
    assert "fresh" not in (await site.get("/app/labels")).text
    theirs = await site.post(
        f"/app/labels/tags/{new['id']}/delete", data={"confirm": "yes"}, headers=greg
    )
    assert theirs.status_code == 404
    assert (await ok(acme.client.get(f"/tags/{new['id']}")))["name"] == "fresh"


async def test_admin_is_for_owners_tokens_and_workspace_settings(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient, client_for: ClientFor
):
    await _with_role(acme, OWEN, "Owen Owner", "owner")
    await _with_role(acme, LENA, "Lena Lead", "lead")
    await sign_in(site, LENA)
    assert (await site.get("/app/admin")).status_code == 403
    headers = {"X-CSRF-Token": await sign_in(site, OWEN)}
    page = await site.get("/app/admin")
    assert page.status_code == 200 and "owner" in page.text and 'value="Acme"' in page.text

    created = await site.post(
        "/app/admin/tokens", data={"name": "CRM", "role": "lead"}, headers=headers
    )
    token = created.text.split('id="issued-token" class="link" readonly value="')[1].split('"')[0]
    crm_client = client_for(token)
    assert (await crm_client.get("/members")).status_code == 200
    listed = await site.get("/app/admin")
    crm = listed.text.split("CRM")[1]
    assert "Last used: never" not in crm.split("</li>")[0]
    tokens = await ok(acme.client.get("/tokens"))
    crm_id = next(t["id"] for t in tokens if t["name"] == "CRM")
    await site.post(f"/app/admin/tokens/{crm_id}/revoke", headers=headers)
    assert (await crm_client.get("/members")).status_code == 401

    bad = await site.post(
        "/app/admin/settings",
        data={"name": "Acme", "timezone": "Atlantis", "rate_per_second": "fast"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert 'id="ws-timezone-error"' in bad.text and 'id="ws-rate_per_second-error"' in bad.text
    taken = await site.post(
        "/app/admin/settings", data={"name": "Globex", "timezone": "UTC"}, headers=headers
    )
    assert taken.status_code == 422 and 'id="ws-name-error"' in taken.text
    assert (await ok(acme.client.get("/workspace")))["name"] == "Acme"  # nothing half-written
    saved = await site.post(
        "/app/admin/settings",
        data={
            "name": "Acme Choir",
            "timezone": "Berlin",
            "reminders": ["1440", "60"],
            "rate_per_second": "5",
            "daily_limit": "1000",
        },
        headers=headers,
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    assert await ok(acme.client.get("/workspace")) == {
        "name": "Acme Choir",
        "timezone": "Europe/Berlin",
        "default_reminder_offsets": [1440, 60],
        "rate_per_second": 5.0,
        "daily_limit": 1000,
        "member_hourly_cap": 3,
        "member_daily_cap": 10,
    }
    event = await ok(
        acme.client.post(
            "/events",
            json={"title": "X", "starts_at": "2027-01-10T10:00:00", "audience": {}},
        ),
        201,
    )
    assert (event["reminder_offsets"], event["timezone"]) == ([1440, 60], "Europe/Berlin")
    assert (await ok(globex.client.get("/workspace")))["default_reminder_offsets"] == []

    lead_api = await ok(acme.client.post("/tokens", json={"name": "lead", "role": "lead"}), 201)
    refused = await client_for(lead_api["token"]).patch("/workspace", json={"daily_limit": None})
    assert refused.status_code == 403


ANY_ID = "00000000-0000-4000-8000-000000000000"


async def test_every_console_route_needs_a_session(site: httpx.AsyncClient):
    pages = [
        "/app/events/new",
        f"/app/events/{ANY_ID}/edit",
        f"/app/events/{ANY_ID}",
        "/app/compose",
        "/app/people",
        "/app/labels",
        "/app/admin",
        "/app/audience/people?pq=a",
    ]
    for path in pages:
        response = await site.get(path)
        assert (response.status_code, response.headers.get("location")) == (303, "/app"), path
    posts = [
        "/app/events/new",
        f"/app/events/{ANY_ID}/edit",
        f"/app/events/{ANY_ID}/delete",
        "/app/audience",
        "/app/compose/send",
        "/app/people/bulk",
        "/app/people/add",
        "/app/people/invite",
        "/app/labels/groups/new",
        f"/app/labels/tags/{ANY_ID}/merge",
        f"/app/labels/groups/{ANY_ID}/delete",
        "/app/admin/tokens",
        f"/app/admin/tokens/{ANY_ID}/revoke",
        "/app/admin/settings",
    ]
    for path in posts:
        response = await site.post(path, headers={"HX-Request": "true"})
        assert response.status_code == 401, (path, response.status_code)


async def test_core_refusals_are_shown_escaped_and_in_the_leads_language(
    acme: Workspace, site: httpx.AsyncClient
):
    """One handler (webapp/errors.py) renders what core refuses: in the lead's language, and a
    name typed by someone else stays text, never markup."""
    lena = await _with_role(acme, LENA, "Лена", "lead")
    await ok(acme.client.patch(f"/members/{lena['id']}", json={"locale": "ru"}))
    hostile = "<img src=x onerror=alert(1)>"
    linked = await member(acme.client, hostile, telegram_user_id=7099)
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}

    refused = await site.post(
        "/app/people/invite", data={"member_id": linked["id"]}, headers=headers
    )
    assert refused.status_code == 422
    assert "«member_id»" in refused.text and hostile not in refused.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in refused.text

    # Nudging the silent of an event that asks for no answers: refused by core, in Russian.
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Talk",
                "starts_at": "2027-01-10T10:00:00+00:00",
                "audience": {"members": [linked["id"]]},
            },
        ),
        201,
    )
    nudged = await site.post(f"/app/events/{event['id']}/nudge", headers=headers)
    assert nudged.status_code == 422
    assert nudged.text.startswith('<p class="error" role="alert">Проверьте «event_id»')
