"""The sandbox round trip in headless Chromium: log in, connect, run a tool, run a sync, see its records, disconnect."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import RUN_TIMEOUT_MS, Browser

pytestmark = [pytest.mark.browser, pytest.mark.celery]


def open_in_admin(browser: Browser, section: str, row: str) -> None:
    """From the admin's index, as a person clicks: the section, then the row's link."""
    page = browser.page
    page.goto(f"{browser.origin}/admin/")
    page.get_by_role("link", name=section, exact=True).first.click()
    page.get_by_role("link", name=row, exact=True).click()
    # Until then deferred scripts (confirm.js) may not have run: a click would beat them, as no person does.
    page.wait_for_load_state("load")


def wait_until_finished(browser: Browser) -> str:
    """On a run's page (it reloads itself while the run is not finished): its final status."""
    from playwright.sync_api import expect

    status = browser.page.locator(".field-status .readonly")
    expect(status).to_have_text(re.compile(r"succeeded|failed|skipped"), timeout=RUN_TIMEOUT_MS)
    return status.inner_text().strip()


def test_connect_run_a_tool_and_a_sync_then_disconnect_in_a_real_browser(celery_worker, browser):
    from playwright.sync_api import expect  # here, so that without playwright the test skips rather than errs

    page = browser.page
    browser.login()
    expect(page.get_by_role("link", name="OAuth capabilities")).to_be_visible()

    # Connect: the admin's button, the sandbox provider's consent page, the callback, back in the admin.
    open_in_admin(browser, "OAuth capabilities", "sandboxAuth")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"Authorize"))).to_be_visible()
    page.get_by_role("button", name="Authorize").click()
    expect(page.locator(".messagelist")).to_contain_text("Connected sandboxAuth (sandbox).")
    expect(page.locator(".field-status_badge .readonly")).to_have_text("connected")
    expect(page.get_by_role("button", name="Disconnect")).to_be_visible()
    browser.assert_clean("connect")

    # A tool from its Run form: the result is the sandbox user the connection acts for.
    open_in_admin(browser, "Tools", "getMe")
    page.get_by_role("link", name="Run", exact=True).click()
    expect(page.get_by_text("This tool takes no input.")).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    # The run's own page (not the "queued" message: the page reloads itself until the run is done).
    expect(page.locator("#content h2")).to_have_text(re.compile(r"^tool getMe #\d+$"))
    assert wait_until_finished(browser) == "succeeded"
    result = json.loads(page.locator(".field-result_display pre").inner_text())
    assert result["username"] == "admin" and result["email"] == "admin@example.test"
    browser.screenshot("tool-result", full_page=True)
    browser.assert_clean("run a tool")

    # A sync with Run now, then its records in the admin: 25 items over three pages of the API.
    open_in_admin(browser, "Syncs", "itemsSync")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#content h2")).to_have_text(re.compile(r"^sync itemsSync #\d+$"))
    assert wait_until_finished(browser) == "succeeded"
    progress = json.loads(page.locator(".field-progress_display pre").inner_text())
    assert progress["created"] == 25 and progress["pages"] == 3
    page.goto(f"{browser.origin}/admin/")
    page.get_by_role("link", name="Databases", exact=True).click()
    page.get_by_role("row", name=re.compile(r"Sandbox items")).get_by_role("link", name="25").click()
    for column in ("Title", "Item ID", "Status"):
        expect(page.get_by_role("columnheader", name=column)).to_be_visible()
    expect(page.locator("#changelist")).to_contain_text("25 records")
    expect(page.get_by_role("cell", name="Item 13", exact=True)).to_be_visible()
    browser.screenshot("records")
    browser.assert_clean("run a sync")

    # Disconnect: confirm.js asks first (a static file, as the CSP wants); then Connect is back.
    open_in_admin(browser, "OAuth capabilities", "sandboxAuth")
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".messagelist")).to_contain_text("Disconnected sandboxAuth; its tokens were forgotten.")
    browser.assert_clean("disconnect")
    assert browser.dialogs == ["Forget this connection's tokens (and revoke them where the provider allows)?"]
    expect(page.get_by_role("button", name="Connect", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Disconnect")).to_have_count(0)
    expect(page.locator(".field-status_badge .readonly")).to_have_text("not connected")
    browser.assert_clean("the end")
