"""A real headless Chromium (Debian's, driven by Playwright) on the live site, watching its console and requests."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, Site, in_ci

# Debian's package (`make browser` installs it): `playwright install` would download a browser
# build from outside, which CI cannot reach.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
VIEWPORT = {"width": 1100, "height": 640}
# Generous: the run pages wait for a Celery worker that shares two cores with everything else.
RUN_TIMEOUT_MS = 90_000


def _missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (`make browser` installs Debian's chromium; CHROMIUM_PATH points elsewhere)"
    return None


class Browser:
    """One page in a fresh browser context, with everything the site should never cause written down."""

    def __init__(self, page: Any, origin: str, shots: Path) -> None:
        self.page = page
        self.origin = origin
        self.shots = shots
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        page.on("dialog", self._on_dialog)
        page.context.route(re.compile(r".*"), self._only_the_site)

    def _on_console(self, message: Any) -> None:
        # CSP violations ("Refused to load/execute ...") are console errors in Chromium.
        if message.type == "error":
            self.console_errors.append(f"{message.location.get('url') or self.page.url}: {message.text}")

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def _only_the_site(self, route: Any) -> None:
        # Like the socket guard of the other tests: nothing but the live site, so a page that pulls
        # a script or style from a CDN fails here instead of quietly reaching out.
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.foreign_requests.append(url)
            route.abort()

    def assert_clean(self, step: str) -> None:
        """No console error (a CSP violation, a script that threw) and no request beyond the site so far."""
        problems = [*self.console_errors, *(f"request beyond the site: {url}" for url in self.foreign_requests)]
        assert not problems, f"{step}: the browser reported\n" + "\n".join(problems)

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        self.page.goto(f"{self.origin}/admin/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(f"{self.origin}/admin/")

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Kept on the test item so the browser fixture can tell, in its teardown, whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture starts a site or a worker: skip without a browser, but never in CI."""
    if item.get_closest_marker("browser") is None:
        return
    missing = _missing_browser()
    if missing:
        if in_ci():
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture
def screenshots_dir(tmp_path: Path) -> Path:
    """BROWSER_SCREENSHOTS=docs/screenshots keeps fresh ones for the README; a temp folder otherwise."""
    wanted = os.environ.get("BROWSER_SCREENSHOTS", "").strip()
    folder = Path(wanted).resolve() if wanted else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(site: Site, screenshots_dir: Path, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Chromium on the live site, the site (admin user, sandbox, examples) set up before it starts.

    Function-scoped on purpose: Playwright's sync API keeps an asyncio loop running in this thread
    while it is started, and Django refuses ORM calls under a running loop; so the ORM work of the
    fixtures happens before, and the database is flushed after, the browser's lifetime.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
        context.set_default_timeout(30_000)
        # The admin's navigation sidebar folded, as its « button leaves it: screenshots show the page itself.
        context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        driven = Browser(context.new_page(), site.url, screenshots_dir)
        try:
            yield driven
        finally:
            report = getattr(request.node, "report_call", None)
            if report is None or report.failed:
                try:
                    print(f"page at the failure: {driven.screenshot('failure')}")
                except Exception as exc:  # a dead page must not hide the test's own failure
                    print(f"no screenshot of the failure: {exc}")
            context.close()
            chromium.close()
