"""The Mini App on the server: Telegram sign-in, sessions, CSRF, roles and sealed workspaces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from core.clock import utcnow
from core.settings import Settings
from tests.conftest import Workspace
from tests.factories import group, member, ok
from tests.webapp_helpers import BOT_TOKEN, init_data, sign_in

ANNA = {"id": 4001, "first_name": "Anna", "language_code": "en"}
LENA = {"id": 4002, "first_name": "Lena"}
OTTO = {"id": 4003, "first_name": "Otto"}


async def _event(ws: Workspace, audience: dict[str, Any], title: str = "Sync") -> dict[str, Any]:
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    return await ok(  # type: ignore[no-any-return]
        ws.client.post(
            "/events",
            json={
                "title": title,
                "starts_at": start.isoformat(),
                "audience": audience,
                "confirmation_required": True,
                "confirm_before_minutes": 60,
            },
        ),
        201,
    )


async def test_a_member_signs_in_with_telegram_and_answers_in_one_tap(
    acme: Workspace, site: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    event = await _event(acme, {"members": [anna["id"]]})
    first = await site.get("/app")
    assert "Open this page from the bot&#39;s menu button" in first.text
    csrf = await sign_in(site, ANNA)
    home = await site.get("/app")
    assert "My events" in home.text and "Sync" in home.text
    assert 'aria-pressed="true"' not in home.text

    refused = await site.post(
        f"/app/events/{event['id']}/answer", data={"occurrence": "", "choice": "going"}
    )
    assert refused.status_code == 403  # no CSRF token
    card = await site.post(
        f"/app/events/{event['id']}/answer",
        data={"occurrence": "", "choice": "going"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert card.status_code == 200
    assert 'value="going"\n              aria-pressed="true"' in card.text
    board = await ok(acme.client.get(f"/events/{event['id']}/confirmations"))
    assert [p["name"] for p in board["going"]] == ["Anna"]
    bad = await site.post(
        f"/app/events/{event['id']}/answer",
        data={"occurrence": "", "choice": "perhaps"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 422
    for garbage in ("garbage", "2026-13-45", "99999999T999999Z"):
        odd = await site.post(
            f"/app/events/{event['id']}/answer",
            data={"occurrence": garbage, "choice": "going"},
            headers={"X-CSRF-Token": csrf},
        )
        assert odd.status_code == 422 and "20261207T070000Z" in odd.text, odd.text


@pytest.mark.parametrize(
    ("how", "status"),
    [("forged", 401), ("expired", 401), ("stranger", 403), ("garbage", 401)],
)
async def test_untrusted_sign_ins_are_refused(
    how: str, status: int, acme: Workspace, site: httpx.AsyncClient
):
    await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    data = {
        "forged": init_data(ANNA, token="999:OTHER-BOT"),
        "expired": init_data(ANNA, age_seconds=2 * 24 * 3600),
        "stranger": init_data({"id": 999999, "first_name": "X"}),
        "garbage": "user=%7B%22id%22%3A4001%7D&hash=00",
    }[how]
    response = await site.post("/app/auth", data={"init_data": data})
    assert response.status_code == status, response.text
    assert "vestnik_session" not in response.headers.get("set-cookie", "")
    home = await site.get("/app")
    assert "My events" not in home.text


async def test_the_board_is_for_leads_of_the_same_workspace_only(
    acme: Workspace, globex: Workspace, site: httpx.AsyncClient
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena", telegram_user_id=LENA["id"], role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    team = await group(acme.client, "Team", anna)
    event = await _event(acme, {"groups": [team["id"]]})
    their_role = next(r for r in await ok(globex.client.get("/roles")) if r["name"] == "lead")
    await member(globex.client, "Otto", telegram_user_id=OTTO["id"], role_ids=[their_role["id"]])
    theirs = await _event(globex, {}, title="Theirs")

    await sign_in(site, LENA)
    page = await site.get(f"/app/events/{event['id']}/board")
    assert page.status_code == 200 and "Silent" in page.text and "Anna" in page.text
    assert (await site.get(f"/app/events/{theirs['id']}/board")).status_code == 404

    site.cookies.clear()
    csrf = await sign_in(site, ANNA)
    assert (await site.get(f"/app/events/{event['id']}/board")).status_code == 403
    other = await site.post(
        f"/app/events/{theirs['id']}/answer",
        data={"occurrence": "", "choice": "going"},
        headers={"X-CSRF-Token": csrf},
    )
    assert other.status_code == 422 and "not found" in other.text

    site.cookies.clear()
    assert (await site.get(f"/app/events/{event['id']}/board")).status_code == 303
    expired = await site.post(
        f"/app/events/{event['id']}/answer",
        data={"occurrence": "", "choice": "going"},
        headers={"HX-Request": "true"},
    )
    assert expired.status_code == 401


async def test_dev_login_only_when_switched_on(
    acme: Workspace, site: httpx.AsyncClient, settings: Settings
):
    await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    refused = await site.get("/app/dev-login", params={"telegram_user_id": ANNA["id"]})
    assert refused.status_code == 403
    app = create_app(
        settings.model_copy(
            update={"telegram_token": SecretStr(BOT_TOKEN), "webapp_dev_login": True}
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
        ) as dev,
    ):
        signed = await dev.get("/app/dev-login", params={"telegram_user_id": ANNA["id"]})
        assert signed.status_code == 303
        assert "My events" in (await dev.get("/app")).text
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Path=/app" in cookie


async def test_settings_check_every_field_and_change_nothing_until_all_are_right(
    acme: Workspace, site: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    csrf = await sign_in(site, ANNA)
    page = await site.get("/app/settings")
    assert page.status_code == 200 and 'for="timezone"' in page.text
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    good = {
        "timezone": "Berlin",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "locale": "ru",
        "preferred_time": "evening",
    }
    assert (await site.post("/app/settings", data=good)).status_code == 403  # no CSRF token

    for field, value, says in (
        ("timezone", "Atlantis", "Unknown time zone"),
        ("timezone", "Kiev", "Several places match: Europe/Kiev, Europe/Kyiv"),
        ("quiet_end", "", "Give both times"),
    ):
        response = await site.post("/app/settings", data=good | {field: value}, headers=headers)
        assert response.status_code == 422 and says in response.text, response.text
        assert 'role="alert"' in response.text
    unchanged = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert (unchanged["timezone"], unchanged["quiet_hours"]) == ("Europe/Moscow", None)

    saved = await site.post("/app/settings", data=good, headers=headers)
    assert saved.status_code == 200 and "Сохранено." in saved.text  # now in her new language
    after = await ok(acme.client.get(f"/members/{anna['id']}"))
    assert after["timezone"] == "Europe/Berlin"
    assert after["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert (after["locale"], after["preferred_time"], after["status"]) == (
        "ru",
        "evening",
        "unsubscribed",  # the reminders box was left unticked
    )
    back = await site.post("/app/settings", data=good | {"subscribed": "yes"}, headers=headers)
    assert back.status_code == 200
    assert (await ok(acme.client.get(f"/members/{anna['id']}")))["status"] == "active"


async def test_the_composer_is_for_leads_checks_csrf_and_sends_a_broadcast(
    acme: Workspace, site: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    team = await group(acme.client, "Team", anna)
    csrf = await sign_in(site, ANNA)
    assert (await site.get("/app/compose")).status_code == 403  # a plain member
    site.cookies.clear()
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena", telegram_user_id=LENA["id"], role_ids=[lead_role["id"]])
    csrf = await sign_in(site, LENA)
    assert (await site.get("/app/compose")).status_code == 200
    form = {"groups": [team["id"]], "text": "Hi {{ member.first_name }}"}
    assert (await site.post("/app/audience", data=form)).status_code == 403
    counted = await site.post("/app/audience", data=form, headers={"X-CSRF-Token": csrf})
    assert "<strong>1</strong>" in counted.text and "Anna" in counted.text
    assert f'<option value="{anna["id"]}">Preview for: Anna</option>' in counted.text
    as_anna = await site.post(
        "/app/compose/preview", data=form | {"sample": anna["id"]}, headers={"X-CSRF-Token": csrf}
    )
    assert "Hi Anna" in as_anna.text
    empty = await site.post("/app/compose/send", data={"text": "x"}, headers={"X-CSRF-Token": csrf})
    assert empty.status_code == 422 and "Pick at least one group" in empty.text
    bad = await site.post(
        "/app/compose/send", data=form | {"text": "{{ oops"}, headers={"X-CSRF-Token": csrf}
    )
    assert bad.status_code == 422 and "template syntax error" in bad.text
    sent = await site.post("/app/compose/send", data=form, headers={"X-CSRF-Token": csrf})
    assert sent.status_code == 200 and 'id="progress"' in sent.text


async def test_add_to_my_calendar_gives_a_working_feed_once_and_replaces_it(
    acme: Workspace, site: httpx.AsyncClient
):
    anna = await member(acme.client, "Anna", telegram_user_id=ANNA["id"])
    await _event(acme, {"members": [anna["id"]]}, title="Retro")
    csrf = await sign_in(site, ANNA)
    page = await site.get("/app/calendar")
    assert "Get my calendar link" in page.text
    assert (await site.post("/app/calendar")).status_code == 403  # no CSRF token
    links = await site.post("/app/calendar", headers={"X-CSRF-Token": csrf})
    url = links.text.split('readonly value="')[1].split('"')[0]
    assert 'href="webcal://' in links.text
    feed = await site.get(httpx.URL(url).path)
    assert feed.status_code == 200 and b"SUMMARY:Retro" in feed.content
    again = await site.get("/app/calendar")
    assert "You already have a calendar link" in again.text and url not in again.text
    renewed = await site.post("/app/calendar", headers={"X-CSRF-Token": csrf})
    new_url = renewed.text.split('readonly value="')[1].split('"')[0]
    assert new_url != url
    assert (await site.get(httpx.URL(url).path)).status_code == 404
