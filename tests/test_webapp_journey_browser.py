"""The journey builder in a real browser (headless Chromium): a lead builds the course
onboarding journey from nothing, activates it, a member joins the group through the bot (the
emulator, real HTTP), the funnel shows them waiting at step 2, the lead moves them to step 3.
Screenshots of the builder and the funnel, light and dark (docs/screenshots/ with
--refresh-screenshots)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utcnow
from core.db import make_sessionmaker
from core.journeys.runner import advance_due
from emulators.telegram import BotApiEmulator
from tests.chats import Talk
from tests.conftest import Workspace
from tests.factories import group, member, ok, role_id
from tests.test_webapp_browser import PHONE, browser, served  # noqa: F401  (fixtures)

LEAD = 5101
MEMBER = {"id": 5102, "first_name": "Anna", "language_code": "en"}


async def _settled(page: Page) -> None:
    """Until htmx has swapped and settled what it last fetched (its new content is live then:
    a person is never faster than that, a test is)."""
    await page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


async def _add(page: Page, kind: str, fields: dict[str, str]) -> None:
    """Add a step through the "Add a step" form, as a lead would."""
    steps = await page.locator("li.step").count()
    await _settled(page)
    await page.select_option("#new-kind", kind)
    await page.locator(f'#new-step input[name="kind"][value="{kind}"]').wait_for(state="attached")
    await _settled(page)  # the fields of that kind are in: fill them, not the ones going
    for name, value in fields.items():
        field = page.locator(f'#new-step [name="{name}"]')
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.locator("#new-step").get_by_role("button", name="Add a step").click()
    await page.locator("li.step").nth(steps).wait_for()
    await _settled(page)


async def test_a_lead_builds_the_onboarding_journey_and_moves_a_member(
    screenshots: Path,
    acme: Workspace,
    engine: AsyncEngine,
    emulator: BotApiEmulator,
    served: str,  # noqa: F811
    browser: Browser,  # noqa: F811
    telegram_bot: Talk,
):
    await member(
        acme.client,
        "Lena Lead",
        telegram_user_id=LEAD,
        role_ids=[await role_id(acme.client, "lead")],
    )
    course = await group(acme.client, "Course 2027")
    await ok(acme.client.post("/tags", json={"name": "started"}), 201)
    await ok(
        acme.client.post(
            "/templates", json={"name": "Welcome", "text": "Welcome, {{ member.first_name }}!"}
        ),
        201,
    )

    for scheme in ("light", "dark"):
        page = await browser.new_page(viewport=PHONE, color_scheme=scheme)  # type: ignore[arg-type]
        page.on("dialog", lambda dialog: dialog.accept())  # "Delete step 9?"
        await page.goto(f"{served}/app/dev-login?telegram_user_id={LEAD}")
        await page.goto(f"{served}/app/journeys")
        if scheme == "dark":
            await page.get_by_role("link", name="Course onboarding").click()
            await page.get_by_role("heading", name="Course onboarding").wait_for()
            await page.screenshot(
                path=str(screenshots / "app-journey-builder-dark.png"), full_page=True
            )
            await page.locator("svg.funnel").scroll_into_view_if_needed()
            await page.locator("svg.funnel").screenshot(
                path=str(screenshots / "app-journey-funnel-dark.png")
            )
            break
        await page.fill("#j-name", "Course onboarding")
        await page.select_option("#j-trigger", "joined_group")
        await page.select_option("#j-group", label="Course 2027")
        await page.get_by_role("button", name="Create").click()
        await page.get_by_role("heading", name="Course onboarding").wait_for()

        await _add(page, "send", {"template_id": "Welcome", "title": "Welcome"})
        await _add(page, "wait", {"wait_mode": "preferred", "title": "Their morning"})
        await _add(
            page,
            "wait_for_reply",
            {
                "title": "Lesson 1?",
                "text": "Have you opened lesson 1?",
                "choice_label_0": "Yes",
                "choice_label_1": "Not yet",
                "timeout_amount": "3",
                "timeout_unit": "days",
            },
        )
        await _add(page, "send", {"title": "We miss you", "text": "We miss you!"})
        await _add(page, "wait", {"wait_mode": "duration", "amount": "4", "unit": "days"})
        await _add(page, "alert", {"reason": "silent for a week"})
        await _add(page, "end", {})
        await _add(page, "tags", {"title": "Started"})
        # The new tags step adds "started": edit it; then point the question's branches.
        tags_card = page.locator("li.step").nth(7)
        await tags_card.locator("summary").click()
        await tags_card.locator('select[name="add"]').select_option(label="started")
        await tags_card.get_by_role("button", name="Save step").click()
        await page.locator("li.step").nth(7).get_by_text("Tags: +started").wait_for()
        ask = page.locator("li.step").nth(2)
        await ask.locator("summary").click()
        await ask.locator('select[name="choice_to_0"]').select_option(label="8. Started")
        await ask.locator('select[name="choice_to_1"]').select_option(label="7. End")
        await ask.locator('select[name="on_timeout"]').select_option(label="4. We miss you")
        await ask.get_by_role("button", name="Save step").click()
        said = page.locator("li.step").nth(2).locator(".said")
        await said.get_by_text("“Yes” → step 8 (Started)").wait_for()
        assert "if no answer in 3 days → step 4 (We miss you)" in await said.inner_text()

        # A loop with no wait is refused beside the field, and nothing is saved.
        await _add(page, "goto", {"to": "end-1"})
        goto = page.locator("li.step").nth(8)
        await goto.locator("summary").click()
        await goto.locator('select[name="to"]').select_option(label="9. Go to a step")
        await goto.get_by_role("button", name="Save step").click()
        await page.get_by_role("alert").filter(has_text="loop").wait_for()
        await page.locator("li.step").nth(8).get_by_role("button", name="Delete step: 9").click()
        await page.locator("li.step").nth(8).wait_for(state="detached")

        await page.get_by_role("button", name="Activate").click()
        await page.locator(".badge.status-active").wait_for()

        invite = await ok(acme.client.post("/invites", json={"group_id": course["id"]}), 201)
        await telegram_bot.chat(MEMBER).send(f"/start {invite['token']}", replies=2)
        await advance_due(make_sessionmaker(engine), "test", utcnow)
        await page.reload()
        second = page.locator("li.step").nth(1)
        await second.locator("a.waiting b").filter(has_text="1").wait_for()
        await page.screenshot(path=str(screenshots / "app-journey-builder.png"), full_page=True)
        await page.locator("svg.funnel").screenshot(
            path=str(screenshots / "app-journey-funnel.png")
        )

        await second.locator("a.waiting").click()
        await page.get_by_role("heading", name="Waiting at “Their morning”").wait_for()
        await page.get_by_label("Anna").check()
        await page.select_option("#move-to", label="3. Lesson 1?")
        await page.get_by_role("button", name="Move").click()
        await page.get_by_role("status").filter(has_text="1 member moved.").wait_for()
        runs = await ok(
            acme.client.get(f"/journeys/{(await ok(acme.client.get('/journeys')))[0]['id']}/runs")
        )
        assert runs["items"][0]["step_key"] == "wait-for-reply-1"
        await page.close()
