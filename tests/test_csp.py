"""Every page of the site carries a Content-Security-Policy, and none of ours needs inline script to work."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import requests

from connections.models import Tool
from tests.oauth_helpers import connect, hidden_inputs, start_in_admin


class _Scripts(HTMLParser):
    """Inline scripts (without a nonce), inline event handlers and javascript: URLs; and script sources."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.sources: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.inline.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            if named.get("src"):
                self.sources.append(named["src"] or "")
            elif (named.get("type") or "").lower() not in ("application/json", "application/ld+json") and not named.get(
                "nonce"
            ):
                self.inline.append("<script> without src or nonce")


def script_src(policy: str) -> str:
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip())
    return directives.get("script-src", directives.get("default-src", ""))


def check_page(session: requests.Session, url: str, problems: list[str], loaded: set[str]) -> requests.Response:
    answer = session.get(url, timeout=20)
    assert answer.status_code < 500, (url, answer.status_code)
    policy = answer.headers.get("Content-Security-Policy", "")
    source = script_src(policy)
    if not policy:
        problems.append(f"{url}: no Content-Security-Policy header")
    elif "'unsafe-inline'" in source or "'unsafe-eval'" in source or not source:
        problems.append(f"{url}: script-src allows inline script ({source!r})")
    elif "frame-ancestors 'none'" not in policy:
        problems.append(f"{url}: framing allowed")
    # The callback's URL holds the code and state: no other site may receive it as a referrer.
    if answer.headers.get("Referrer-Policy") not in ("same-origin", "no-referrer", "strict-origin"):
        problems.append(f"{url}: Referrer-Policy {answer.headers.get('Referrer-Policy')!r}")
    if answer.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"{url}: no X-Content-Type-Options: nosniff")
    if answer.headers.get("Content-Type", "").startswith("text/html"):
        parser = _Scripts()
        parser.feed(answer.text)
        problems += [f"{url}: {what}" for what in parser.inline]
        for src in parser.sources:
            script = urljoin(url, src)
            if urlparse(script).netloc != urlparse(url).netloc:
                problems.append(f"{url}: script from another origin {script}")
            elif script not in loaded:
                loaded.add(script)
                if session.get(script, timeout=20).status_code != 200:
                    problems.append(f"{url}: script {script} does not load")
    return answer


def test_every_admin_page_and_our_pages_carry_a_csp_and_no_inline_script(site):
    connect(site)  # a connected capability shows its Disconnect button
    session = site.admin_session()
    problems: list[str] = []
    loaded: set[str] = set()

    # A queued run: its page refreshes itself while the run is not finished.
    tool = Tool.objects.get(worker__slug="sandbox", key="getMe")
    form = session.get(f"{site.url}/admin/connections/tool/{tool.pk}/run/", timeout=20)
    queued = session.post(form.url, data=hidden_inputs(form.text), timeout=20)
    assert "/admin/connections/run/" in queued.url, queued.url

    index = check_page(session, f"{site.url}/admin/", problems, loaded)
    changelists = sorted(set(re.findall(r'href="(/admin/[a-z_]+/[a-z_]+/)"', index.text)))
    assert "/admin/connections/oauthcapability/" in changelists and len(changelists) > 10
    pages = [f"{site.url}/admin/connections/tool/{tool.pk}/run/", queued.url]
    for path in changelists:
        listing = check_page(session, f"{site.url}{path}", problems, loaded)
        pages += [
            f"{site.url}{href}" for href in sorted(set(re.findall(rf'href="({path}\d+/change/)"', listing.text)))[:2]
        ]
        if f'href="{path}add/"' in listing.text:
            pages.append(f"{site.url}{path}add/")
    for page in pages:
        check_page(session, page, problems, loaded)

    # The site's own pages: the callback's result page, the sandbox consent page, health.
    anonymous = requests.Session()
    check_page(anonymous, f"{site.url}/oauth/callback/?code=abc&state=def", problems, loaded)
    check_page(anonymous, f"{site.url}/healthz", problems, loaded)
    check_page(anonymous, f"{site.url}/admin/login/", problems, loaded)
    authorize = start_in_admin(site, session, "sandbox", "sandboxAuth").headers["Location"]
    consent = check_page(session, authorize, problems, loaded)
    assert "Authorize" in consent.text

    assert loaded, "no script was checked"
    assert not problems, "\n".join(problems)
