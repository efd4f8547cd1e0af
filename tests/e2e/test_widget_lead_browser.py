"""The widget's "leave your question" form in headless Chromium: nobody is available, the
customer leaves their email and question, and is told when to expect an answer."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.leads import Lead
from actors.ports import PresenceChanged
from tests.e2e.test_widget_browser import ARTIFACTS, WAIT_MS, XSS, Site, chromium, running_site, say


def drive_lead(site: Site) -> dict[str, Any]:
    """The customer's side, in Chromium (runs in a worker thread)."""
    from playwright.sync_api import expect

    seen: dict[str, Any] = {"dialogs": [], "requests": []}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 520, "height": 900})
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.on(
            "request", lambda r: seen["requests"].append(r.url) if r.url.endswith("/lead") else None
        )
        page.goto(site.base_url + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "online")
        log = page.locator("#log")

        say(page, "I want to talk to a human")
        expect(log.locator(".sys-warn")).to_contain_text("nobody is available")
        form = log.locator(".lead-form")
        expect(form).to_be_visible()
        expect(form.get_by_label("Your question")).to_have_value("I want to talk to a human")

        form.get_by_label("Email").fill("not an address")
        form.get_by_role("button", name="Send").click()
        expect(form.locator(".lead-status")).to_contain_text("email address like")
        expect(form.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
        seen["requests_after_bad_email"] = len(seen["requests"])

        form.get_by_label("Email").fill("ada@example.com")
        form.get_by_label("Name (optional)").fill("Ada")
        form.get_by_label("Your question").fill(f"{XSS} Do you ship to Norway?")
        page.screenshot(path=str(ARTIFACTS / "widget-lead-form.png"))
        form.get_by_role("button", name="Send").click()

        expect(log.locator(".sys-text").filter(has_text="Thanks, your")).to_have_text(
            "Thanks, your question has been sent."
        )
        expect(log.locator(".msg-bot .msg-text").last).to_have_text(
            "Thanks! We have your question and will answer you at ada@example.com "
            "as soon as one of us is free."
        )
        expect(log.locator(".lead-form")).to_have_count(0)
        seen["images"] = page.locator("#log img").count()
        page.screenshot(path=str(ARTIFACTS / "widget-lead.png"))
    return seen


@pytest.mark.browser
async def test_a_customer_leaves_a_question_when_nobody_is_available() -> None:
    with trio.fail_after(60):
        async with running_site() as site:
            await site.domain.deliver(PresenceChanged("U01", False))  # the only agent left
            seen = await trio.to_thread.run_sync(drive_lead, site)
            leads: tuple[Lead, ...] = site.domain.leads()
    assert seen["dialogs"] == [] and seen["images"] == 0
    assert seen["requests_after_bad_email"] == 0  # checked in the page before any request
    assert len(seen["requests"]) == 1
    [lead] = leads
    assert (lead.email, lead.name) == ("ada@example.com", "Ada")
    assert lead.question == f"{XSS} Do you ship to Norway?"
