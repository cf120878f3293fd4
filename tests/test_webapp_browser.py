"""The Mini App in a real browser (Debian's headless Chromium, driven by Playwright): signing in
with Telegram's launch parameters, answering in one tap, the lead's board. Saves screenshots of
the main pages: to a temporary folder, or to docs/screenshots/ for the README with
`python -m pytest --refresh-screenshots`."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, async_playwright
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.settings import Settings
from emulators.telegram import BotApiEmulator
from tests.conftest import Workspace, serving
from tests.factories import group, member, ok, tag
from tests.test_dispatch import run_due
from tests.webapp_helpers import BOT_TOKEN, init_data
from worker.channels import TelegramChannel

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
    configured = settings.model_copy(
        update={"telegram_token": SecretStr(BOT_TOKEN), "webapp_dev_login": True}
    )
    async with serving(configured) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


async def test_a_member_answers_going_and_the_lead_sees_it_on_the_board(
    screenshots: Path, acme: Workspace, served: str, browser: Browser
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena Lead", telegram_user_id=5002, role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    boris = await member(acme.client, "Boris Lee", telegram_user_id=5003)
    team = await group(acme.client, "Backend", anna, boris)
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
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
    await member_page.screenshot(path=str(screenshots / "app-member-events.png"), full_page=True)

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
    await lead_page.screenshot(path=str(screenshots / "app-lead-board.png"), full_page=True)

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
    screenshots: Path, acme: Workspace, served: str, browser: Browser
):
    await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    page = await browser.new_page(viewport=PHONE)
    await page.goto(f"{served}/app/dev-login?telegram_user_id=5001")
    await page.get_by_role("link", name="Settings").click()
    await page.get_by_label("Time zone").fill("Atlantis")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("alert").filter(has_text="Unknown time zone").wait_for()
    await page.screenshot(path=str(screenshots / "app-settings-error.png"), full_page=True)
    await page.get_by_label("Time zone").fill("Екатеринбург")
    await page.get_by_label("From").fill("22:00")
    await page.get_by_label("To").fill("08:00")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("status").filter(has_text="Saved.").wait_for()
    assert await page.get_by_label("Time zone").input_value() == "Asia/Yekaterinburg"


async def test_a_lead_picks_an_audience_and_the_count_follows_the_clicks(
    screenshots: Path, acme: Workspace, served: str, browser: Browser
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
    await page.get_by_label("Backend", exact=True).check()
    await page.get_by_text("2 will get it").wait_for()
    assert "Anna Smirnova, Boris Lee" in await page.locator("#audience").inner_text()
    await page.get_by_label("Design", exact=True).check()
    await page.get_by_text("3 will get it").wait_for()
    await page.get_by_label("Text").fill("{{ member.first_name }}, the demo is at 5!")
    await page.locator("#preview").get_by_text("Lena, the demo is at 5!").wait_for()
    await page.screenshot(path=str(screenshots / "app-lead-compose.png"), full_page=True)
    await page.get_by_role("button", name="Send now").click()
    await page.locator("#progress").wait_for()
    assert "Progress" in await page.locator("#progress").inner_text()
    await page.get_by_label("Text").fill("{{ member.age }}")
    await page.locator("#preview").get_by_role("alert").wait_for()


async def test_a_lead_builds_an_audience_creates_an_event_and_sees_the_answer_on_the_board(
    screenshots: Path, acme: Workspace, served: str, browser: Browser
):
    owner_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "owner")
    await member(acme.client, "Lena Lead", telegram_user_id=5002, role_ids=[owner_role["id"]])
    anna = await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    boris = await member(acme.client, "Boris Lee", telegram_user_id=5003)
    vera = await member(acme.client, "Vera Stone", telegram_user_id=5004)
    await group(acme.client, "Backend", anna, boris)
    await group(acme.client, "Design", vera)
    await tag(acme.client, "on-call", boris)

    lead = await browser.new_page(viewport=PHONE)
    await lead.goto(f"{served}/app/dev-login?telegram_user_id=5002")
    await lead.get_by_role("link", name="New event").first.click()
    await lead.get_by_role("heading", name="New event").wait_for()
    await lead.get_by_label("Title").fill("Backend sync")
    await lead.get_by_label("Starts at").fill("10:30")
    await lead.get_by_label("Time zone").fill("Berlin")
    await lead.get_by_label("Repeat").select_option("weekly")
    await lead.get_by_label("Mon", exact=True).check()
    await lead.get_by_label("Thu", exact=True).check()
    await lead.get_by_label("Ask members to confirm").check()
    await lead.get_by_label("Answers close this many hours before the start").fill("2")
    await lead.get_by_label("Members may see who else is going").check()

    # The audience: the count and the first names follow each click.
    await lead.get_by_text("0 will get it").wait_for()
    await lead.get_by_label("Backend", exact=True).check()
    await lead.get_by_text("2 will get it").wait_for()
    await lead.get_by_label("People: Find a person by name", exact=True).fill("ver")
    await lead.locator("#found-members").get_by_label("Vera Stone").check()
    await lead.get_by_text("3 will get it").wait_for()
    await lead.get_by_label("Except those with the tags: #on-call").check()
    await lead.get_by_text("2 will get it").wait_for()
    shown = " ".join((await lead.locator("#audience").inner_text()).split())
    assert shown == "2 will get it Anna Smirnova, Vera Stone"
    await lead.screenshot(path=str(screenshots / "app-lead-event-editor.png"), full_page=True)
    await lead.get_by_role("button", name="Create").click()
    await lead.get_by_role("heading", name="Backend sync").wait_for()
    assert "Silent 2\nAnna Smirnova, Vera Stone" in await lead.locator("dl.board").inner_text()

    # Anna answers Going in her Mini App; the board shows it.
    anna_page = await browser.new_page(viewport=PHONE)
    await anna_page.goto(f"{served}/app/dev-login?telegram_user_id=5001")
    card = anna_page.locator("li.card", has_text="Backend sync").first
    await card.get_by_role("button", name="Going", exact=True).click()
    await card.locator('[aria-pressed="true"]', has_text="Going").wait_for()
    await card.get_by_role("link", name="Backend sync").click()
    await anna_page.get_by_text("Who is going").wait_for()
    assert "weekly, on Mon and Thu" in await anna_page.locator("dl.board").inner_text()
    await anna_page.screenshot(path=str(screenshots / "app-member-event.png"), full_page=True)
    await lead.reload()
    board = await lead.locator("dl.board").inner_text()
    assert "Going 1\nAnna Smirnova" in board and "Silent 1\nVera Stone" in board

    # The lead's other pages, for the README.
    await lead.goto(f"{served}/app/people")
    await lead.get_by_label("Search").fill("lee")
    await lead.locator("#people-count").get_by_text("1 of 1").wait_for()
    await lead.get_by_label("Search").fill("")
    await lead.locator("#people-count").get_by_text("4 of 4").wait_for()
    await lead.get_by_label("Anna Smirnova").check()
    await lead.get_by_label("Vera Stone").check()
    await lead.get_by_label("With the selected people").select_option("add_tag")
    await lead.get_by_label("Choose the group or tag.").select_option(label="#on-call")
    await lead.get_by_role("button", name="Apply").click()
    await lead.get_by_text("Done: 2 changed").wait_for()
    # The list refreshes below the form, and the outcome stays where the lead reads it.
    await lead.locator("#people-list").get_by_text("Design · #on-call").wait_for()
    assert "Done: 2 changed" in await lead.locator("#bulk-outcome").inner_text()
    assert await lead.locator("#people-count").count() == 1
    await lead.locator("li.person", has_text="Vera Stone").get_by_text("#on-call").wait_for()
    await lead.screenshot(path=str(screenshots / "app-lead-people.png"), full_page=True)
    await lead.goto(f"{served}/app/labels")
    await lead.locator("#labels-groups").get_by_role("button", name="Delete").first.click()
    await lead.get_by_text("Delete the group “Backend”? 2 members leave it").wait_for()
    await lead.screenshot(path=str(screenshots / "app-lead-groups.png"), full_page=True)
    await lead.get_by_role("button", name="Cancel").click()
    await lead.goto(f"{served}/app/admin")
    await lead.get_by_label("Name", exact=True).fill("CRM sync")
    await lead.get_by_role("button", name="Add").click()
    await lead.get_by_text("Copy the token now").wait_for()
    await lead.screenshot(path=str(screenshots / "app-admin.png"), full_page=True)


async def test_a_lead_reads_the_statistics_dashboard(
    screenshots: Path,
    acme: Workspace,
    served: str,
    browser: Browser,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    telegram: TelegramChannel,
):
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena Lead", telegram_user_id=5002, role_ids=[lead_role["id"]])
    people = [
        await member(acme.client, name, telegram_user_id=5100 + i)
        for i, name in enumerate(["Анна Смирнова", "Boris Lee", "Vera Stone", "Gleb Orlov"])
    ]
    await ok(acme.client.patch("/workspace", json={"daily_limit": 6, "rate_per_second": 2}))
    # Two weeks of history, as the worker would have written it (the triggers keep the rollup).
    async with engine.begin() as conn:
        await conn.execute(text(HISTORY), {"ws": acme.id, "now": utcnow()})
    emulator.block(5103)
    await ok(
        acme.client.post(
            "/broadcasts",
            json={"audience": {"members": [p["id"] for p in people]}, "text": "Hello"},
        ),
        201,
    )
    await run_due(engine, telegram, utcnow() + timedelta(seconds=1))
    page = await browser.new_page(viewport={"width": 720, "height": 900})
    await page.goto(f"{served}/app/dev-login?telegram_user_id=5002")
    await page.get_by_role("link", name="Statistics").click()
    charts = page.locator("svg.chart")
    await charts.first.wait_for()
    assert await charts.count() == 4
    assert "daily limit 6" in await charts.first.inner_html()
    assert "Hello" in await page.locator("table.figures").nth(1).inner_text()
    await page.screenshot(path=str(screenshots / "app-lead-stats.png"), full_page=True)
    await page.goto(f"{served}/app/people/{people[3]['id']}/timeline")
    await page.get_by_text("Forbidden: bot was blocked by the user").first.wait_for()


HISTORY = """
WITH b AS (
    INSERT INTO broadcasts (id, workspace_id, audience, text, send_at, status, created_by,
                            created_at)
    SELECT gen_random_uuid(), :ws, '{}', 'Earlier news ' || d, CAST(:now AS timestamptz) - d * interval '1 day',
           'scheduled', 'Lena Lead', CAST(:now AS timestamptz) - d * interval '1 day'
    FROM generate_series(1, 14) AS d RETURNING id, send_at
), j AS (
    INSERT INTO jobs (id, workspace_id, broadcast_id, kind, occurrence, occurrence_start, due_at,
                      status, idempotency_key, attempts, created_at, updated_at)
    SELECT gen_random_uuid(), :ws, b.id, 'broadcast', '', b.send_at, b.send_at, 'done',
           'broadcast:' || b.id, 0, CAST(:now AS timestamptz), CAST(:now AS timestamptz)
    FROM b RETURNING id, due_at
)
INSERT INTO deliveries (id, workspace_id, job_id, member_id, channel, status, attempts, sent_at,
                        created_at)
SELECT gen_random_uuid(), :ws, j.id, m.id, 'telegram', 'sent', 1,
       j.due_at + (row_number() OVER (PARTITION BY j.id ORDER BY m.name)) * interval '600 ms',
       j.due_at
FROM j JOIN members m ON m.workspace_id = :ws
WHERE extract(day FROM j.due_at)::int % 3 <> 0 OR m.name < 'C'
"""


# Every element that shows text: its colour against the first opaque background behind it.
CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const behind = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const poor = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.height === 0) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(behind(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) poor.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return poor;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_text_is_readable_in_the_light_and_the_dark_theme(
    scheme: str, acme: Workspace, served: str, browser: Browser
):
    """Outside Telegram the Mini App follows the system's theme: every text, link and button
    label keeps WCAG AA contrast (4.5:1) on whatever it stands on."""
    lead_role = next(r for r in await ok(acme.client.get("/roles")) if r["name"] == "lead")
    await member(acme.client, "Lena Lead", telegram_user_id=5002, role_ids=[lead_role["id"]])
    anna = await member(acme.client, "Anna Smirnova", telegram_user_id=5001)
    team = await group(acme.client, "Backend", anna)
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Backend sync",
                "starts_at": (utcnow() + timedelta(days=2)).isoformat(),
                "audience": {"groups": [team["id"]]},
                "confirmation_required": True,
            },
        ),
        201,
    )
    page = await browser.new_page(viewport=PHONE, color_scheme=scheme)  # type: ignore[arg-type]
    await page.goto(f"{served}/app/dev-login?telegram_user_id=5002")
    for link in ("My events", "People", "Groups and tags", "Send a message", "Settings"):
        await page.get_by_role("link", name=link).first.click()
        await page.wait_for_load_state("networkidle")
        assert await page.evaluate(CONTRAST) == [], f"{link} in the {scheme} theme"
