"""The Mini App in a real browser (Debian's headless Chromium, driven by Playwright): signing in
with Telegram's launch parameters, answering in one tap, the lead's board. Saves screenshots of
the main pages to docs/screenshots/ for the README."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright
from pydantic import SecretStr

from api.app import create_app
from core.settings import Settings
from tests.conftest import Workspace, free_port
from tests.factories import group, member, ok
from tests.webapp_helpers import BOT_TOKEN, init_data

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PHONE = {"width": 360, "height": 640}
DARK = {
    "bg_color": "#17212b",
    "text_color": "#f5f5f5",
    "hint_color": "#8b9aa8",
    "button_color": "#5288c1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#232e3c",
}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "browser tests need Debian's chromium: apt-get install chromium (.ci/run does)"
    return found


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    """The API app (with the Mini App) on a real port, as a browser needs it."""
    port = free_port()
    configured = settings.model_copy(
        update={"telegram_token": SecretStr(BOT_TOKEN), "webapp_dev_login": True}
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(configured), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


async def test_a_member_answers_going_and_the_lead_sees_it_on_the_board(
    acme: Workspace, served: str, browser: Browser
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena Lead", telegram_user_id=5002, role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    boris = await member(acme.client, "Boris Lee", telegram_user_id=5003)
    team = await group(acme.client, "Backend", anna, boris)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    for title, hours in (("Backend sync", 0), ("Retro", 26)):
        await ok(
            acme.client.post(
                "/events",
                json={
                    "title": title,
                    "location": "Room 1",
                    "starts_at": (start + timedelta(hours=hours)).isoformat(),
                    "audience": {"groups": [team["id"]]},
                    "confirmation_required": True,
                    "confirm_before_minutes": 120,
                },
            ),
            201,
        )

    # Anna opens the Mini App from Telegram: signed launch data and a dark theme in the fragment.
    member_page = await browser.new_page(viewport=PHONE)
    fragment = (
        f"tgWebAppData={quote(init_data({'id': 5001, 'first_name': 'Anna'}))}"
        f"&tgWebAppThemeParams={quote(json.dumps(DARK))}"
    )
    await member_page.goto(f"{served}/app#{fragment}")
    await member_page.get_by_role("heading", name="My events").wait_for()
    bg = await member_page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(23, 33, 43)"  # the Telegram theme's bg_color
    card = member_page.locator("li.card", has_text="Backend sync")
    await card.get_by_role("button", name="Going", exact=True).click()
    await (
        member_page.locator("li.card", has_text="Backend sync")
        .locator('[aria-pressed="true"]', has_text="Going")
        .wait_for()
    )
    await member_page.screenshot(path=str(SCREENSHOTS / "app-member-events.png"), full_page=True)

    # The lead's board, signed in with the development login.
    lead_page = await browser.new_page(viewport=PHONE)
    await lead_page.goto(f"{served}/app/dev-login?telegram_user_id=5002")
    await (
        lead_page.locator("li.card", has_text="Backend sync")
        .get_by_role("link", name="Who is coming")
        .click()
    )
    await lead_page.get_by_role("heading", name="Backend sync").wait_for()
    board = await lead_page.locator("dl.board").inner_text()
    assert "Going 1\nAnna Smirnova" in board
    assert "Silent 1\nBoris Lee" in board
    await lead_page.screenshot(path=str(SCREENSHOTS / "app-lead-board.png"), full_page=True)

    # Keyboard only: the answer buttons take focus and Enter answers.
    retro = member_page.locator("li.card", has_text="Retro")
    await retro.get_by_role("button", name="Maybe", exact=True).focus()
    await member_page.keyboard.press("Enter")
    await (
        member_page.locator("li.card", has_text="Retro")
        .locator('[aria-pressed="true"]', has_text="Maybe")
        .wait_for()
    )


async def test_a_member_changes_settings_with_errors_shown_next_to_the_field(
    acme: Workspace, served: str, browser: Browser
):
    await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    page = await browser.new_page(viewport=PHONE)
    await page.goto(f"{served}/app/dev-login?telegram_user_id=5001")
    await page.get_by_role("link", name="Settings").click()
    await page.get_by_label("Time zone").fill("Atlantis")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("alert").filter(has_text="Unknown time zone").wait_for()
    await page.screenshot(path=str(SCREENSHOTS / "app-settings-error.png"), full_page=True)
    await page.get_by_label("Time zone").fill("Екатеринбург")
    await page.get_by_label("From").fill("22:00")
    await page.get_by_label("To").fill("08:00")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("status").filter(has_text="Saved.").wait_for()
    assert await page.get_by_label("Time zone").input_value() == "Asia/Yekaterinburg"


async def test_a_lead_picks_an_audience_and_the_count_follows_the_clicks(
    acme: Workspace, served: str, browser: Browser
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena Lead", telegram_user_id=5002, role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    boris = await member(acme.client, "Boris Lee", telegram_user_id=5003)
    vera = await member(acme.client, "Vera Stone", telegram_user_id=5004)
    await group(acme.client, "Backend", anna, boris)
    await group(acme.client, "Design", vera)
    page = await browser.new_page(viewport=PHONE)
    await page.goto(f"{served}/app/dev-login?telegram_user_id=5002")
    await page.get_by_role("link", name="Send a message").click()
    await page.get_by_text("0 will get it").wait_for()
    await page.get_by_label("Backend").check()
    await page.get_by_text("2 will get it").wait_for()
    assert "Anna Smirnova, Boris Lee" in await page.locator("#audience").inner_text()
    await page.get_by_label("Design").check()
    await page.get_by_text("3 will get it").wait_for()
    await page.get_by_label("Text").fill("{{ member.first_name }}, the demo is at 5!")
    await page.locator("#preview").get_by_text("Lena, the demo is at 5!").wait_for()
    await page.screenshot(path=str(SCREENSHOTS / "app-lead-compose.png"), full_page=True)
    await page.get_by_role("button", name="Send now").click()
    await page.locator("#progress").wait_for()
    assert "Progress" in await page.locator("#progress").inner_text()
    await page.get_by_label("Text").fill("{{ member.age }}")
    await page.locator("#preview").get_by_role("alert").wait_for()
