"""The Mini App's event editor and event page on the server: recurrence in plain words, the full
audience picker, errors next to the fields with nothing half-written, roles, CSRF and sealed
workspaces."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Workspace
from tests.factories import group, member, ok, role_id, tag
from tests.webapp_helpers import sign_in

LENA = {"id": 6001, "first_name": "Lena"}
ANNA = {"id": 6002, "first_name": "Anna"}
GREG = {"id": 6003, "first_name": "Greg"}


async def _lead(ws: Workspace, user: dict[str, Any], name: str = "Lena Lead") -> dict[str, Any]:
    return await member(
        ws.client, name, telegram_user_id=user["id"], role_ids=[await role_id(ws.client, "lead")]
    )


def _event_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "title": "Choir rehearsal",
        "date": "2027-03-01",
        "time": "19:00",
        "end_time": "21:00",
        "timezone": "Berlin",
        "location": "Hall B",
        "repeat": "weekly",
        "interval": "1",
        "weekdays": ["MO", "TH"],
        "reminders": ["1440", "60"],
        "confirm": "yes",
        "confirm_hours": "3",
        "show_attendees": "yes",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


async def test_a_lead_creates_and_edits_an_event_with_recurrence_in_plain_words(
    acme: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA)
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    boris = await member(acme.client, "Boris")
    vera = await member(acme.client, "Vera")
    choir = await group(acme.client, "Choir", anna, boris, vera)
    away = await tag(acme.client, "away", vera)
    csrf = await sign_in(site, LENA)
    headers = {"X-CSRF-Token": csrf}
    page = await site.get("/app/events/new")
    assert page.status_code == 200 and 'name="weekdays"' in page.text and "Choir" in page.text

    form = _event_form(groups=[choir["id"]], exclude_tags=[away["id"]])
    created = await site.post("/app/events/new", data=form, headers=headers)
    assert created.status_code == 204, created.text
    board_url = created.headers["HX-Redirect"]
    event_id = board_url.split("/")[3]
    event = await ok(acme.client.get(f"/events/{event_id}"))
    assert event["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TH"
    assert (event["timezone"], event["local_start"]) == (
        "Europe/Berlin",
        "2027-03-01T19:00:00+01:00",
    )
    assert event["local_end"] == "2027-03-01T21:00:00+01:00"
    assert (event["reminder_offsets"], event["confirm_before_minutes"]) == ([1440, 60], 180)
    assert event["audience"]["groups"] == [choir["id"]]
    assert event["audience"]["exclude_tags"] == [away["id"]]
    assert event["show_attendees"] is True
    board = await site.get(board_url)
    assert "Anna" in board.text and "Boris" in board.text and "Vera" not in board.text

    editor = await site.get(f"/app/events/{event_id}/edit")
    assert "Repeats: weekly, on Mon and Thu" in editor.text
    assert 'aria-label="Except those with the tags: #away" checked' in editor.text
    monthly = _event_form(
        repeat="monthly",
        weekdays=None,
        monthly_by="weekday",
        ordinal="-1",
        weekday="FR",
        count="6",
        members=[boris["id"]],
        exclude_members=[anna["id"]],
        groups=[choir["id"]],
    )
    saved = await site.post(f"/app/events/{event_id}/edit", data=monthly, headers=headers)
    assert saved.status_code == 204, saved.text
    event = await ok(acme.client.get(f"/events/{event_id}"))
    assert event["rrule"] == "FREQ=MONTHLY;BYDAY=-1FR;COUNT=6"
    assert event["audience"]["exclude_members"] == [anna["id"]]
    editor = await site.get(f"/app/events/{event_id}/edit")
    assert "Repeats: monthly, on the last Friday, 6 times" in editor.text
    assert "Anna" in editor.text  # the excluded person is listed as picked

    every_other = _event_form(repeat="weekly", interval="2", weekdays=["TU"], groups=[choir["id"]])
    await site.post(f"/app/events/{event_id}/edit", data=every_other, headers=headers)
    assert (await ok(acme.client.get(f"/events/{event_id}")))["rrule"] == (
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"
    )
    gone = await site.post(f"/app/events/{event_id}/delete", headers=headers)
    assert gone.status_code == 204 and gone.headers["HX-Redirect"] == "/app"
    assert (await acme.client.get(f"/events/{event_id}")).status_code == 404


async def test_a_wrong_form_shows_errors_next_to_the_fields_and_writes_nothing(
    acme: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA)
    choir = await group(acme.client, "Choir")
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}
    cases = [
        (_event_form(groups=[choir["id"]], title=""), "title-error"),
        (_event_form(groups=[choir["id"]], timezone="Atlantis"), "timezone-error"),
        (_event_form(groups=[choir["id"]], date="next week"), "date-error"),
        (_event_form(groups=[choir["id"]], interval="0"), "interval-error"),
        (_event_form(groups=[choir["id"]], confirm_hours="soon"), "confirm_hours-error"),
        (_event_form(), "audience-error"),
    ]
    for form, error_id in cases:
        response = await site.post("/app/events/new", data=form, headers=headers)
        assert response.status_code == 422, (error_id, response.text)
        assert f'id="{error_id}"' in response.text, error_id
        assert 'value="Hall B"' in response.text  # what was typed comes back
    assert (await ok(acme.client.get("/events")))["total"] == 0


async def test_the_editor_is_for_leads_with_a_csrf_token_and_sealed_per_workspace(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA)
    await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    choir = await group(acme.client, "Choir")
    await _lead(globex, GREG, "Greg")
    csrf = await sign_in(site, LENA)
    form = _event_form(groups=[choir["id"]])
    assert (await site.post("/app/events/new", data=form)).status_code == 403  # no CSRF token
    created = await site.post("/app/events/new", data=form, headers={"X-CSRF-Token": csrf})
    event_id = created.headers["HX-Redirect"].split("/")[3]

    await sign_in(site, ANNA)  # a plain member
    assert (await site.get("/app/events/new")).status_code == 403
    assert (await site.get(f"/app/events/{event_id}/edit")).status_code == 403

    greg = {"X-CSRF-Token": await sign_in(site, GREG)}  # a lead of another workspace
    assert (await site.get(f"/app/events/{event_id}/edit")).status_code == 404
    moved = await site.post(f"/app/events/{event_id}/edit", data=form, headers=greg)
    assert moved.status_code == 404
    assert (await site.post(f"/app/events/{event_id}/delete", headers=greg)).status_code == 404
    borrowed = await site.post("/app/events/new", data=form, headers=greg)  # acme's group id
    assert borrowed.status_code == 422 and 'id="audience-error"' in borrowed.text
    count = await site.post("/app/audience", data={"groups": [choir["id"]]}, headers=greg)
    assert count.status_code == 422
    found = await site.get("/app/audience/people", params={"pq": "Anna"})
    assert "Anna" not in found.text
    assert (await ok(acme.client.get(f"/events/{event_id}")))["title"] == "Choir rehearsal"
    assert (await ok(globex.client.get("/events")))["total"] == 0


async def test_the_picker_counts_roles_people_and_exclusions(
    acme: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA)
    anna = await member(acme.client, "Anna")
    boris = await member(acme.client, "Boris")
    choir = await group(acme.client, "Choir", anna, boris)
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}

    async def count(form: dict[str, Any]) -> str:
        response = await site.post("/app/audience", data=form, headers=headers)
        assert response.status_code == 200, response.text
        return response.text

    assert "<strong>2</strong>" in await count({"groups": [choir["id"]]})
    leads = await count({"roles": [await role_id(acme.client, "lead")]})
    assert "<strong>1</strong>" in leads and "Lena Lead" in leads
    both = await count({"groups": [choir["id"]], "exclude_members": [anna["id"]]})
    assert "<strong>1</strong>" in both and "Boris" in both and "Anna" not in both
    found = await site.get("/app/audience/people", params={"pq": "bor", "field": "members"})
    assert f'name="members" value="{boris["id"]}"' in found.text and "Anna" not in found.text


async def test_a_member_sees_the_event_and_who_else_is_going_only_if_the_lead_allows(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    await _lead(acme, LENA)
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    boris = await member(acme.client, "Boris")
    outsider = await member(acme.client, "Otto", telegram_user_id=6009)
    choir = await group(acme.client, "Choir", anna, boris)
    await _lead(globex, GREG, "Greg")
    headers = {"X-CSRF-Token": await sign_in(site, LENA)}
    open_list = _event_form(groups=[choir["id"]], repeat="none", weekdays=None, date="2027-05-04")
    private = open_list | {"title": "Board meeting", "show_attendees": None}
    private.pop("show_attendees")
    shown_id, hidden_id = [
        (await site.post("/app/events/new", data=form, headers=headers))
        .headers["HX-Redirect"]
        .split("/")[3]
        for form in (open_list, private)
    ]
    await ok(
        acme.client.put(f"/events/{shown_id}/confirmations/{boris['id']}", json={"answer": "going"})
    )

    await sign_in(site, ANNA)
    page = await site.get(f"/app/events/{shown_id}")
    assert page.status_code == 200
    assert "Choir rehearsal" in page.text and "Hall B" in page.text
    assert "Who is going" in page.text and "Boris" in page.text
    hidden = await site.get(f"/app/events/{hidden_id}")
    assert hidden.status_code == 200 and "Who is going" not in hidden.text
    assert (
        await site.get(f"/app/events/{shown_id}?occurrence=20270504T170000Z")
    ).status_code == 404

    await sign_in(site, {"id": outsider["telegram_user_id"], "first_name": "Otto"})
    assert (await site.get(f"/app/events/{shown_id}")).status_code == 404  # not in the audience
    await sign_in(site, GREG)
    assert (await site.get(f"/app/events/{shown_id}")).status_code == 404  # another workspace
