"""Drive the authorization flow over real HTTP, as a person in a browser would."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import requests

from connections.models import OAuthCapability


def hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
    return fields


def start_in_admin(site: Any, session: requests.Session, worker: str, key: str) -> requests.Response:
    """Press Connect on the capability's admin page; returns the 302 to the provider."""
    capability = OAuthCapability.objects.get(worker__slug=worker, key=key)
    page = session.get(f"{site.url}/admin/connections/oauthcapability/{capability.pk}/change/", timeout=10)
    assert page.status_code == 200, page.status_code
    token = hidden_inputs(page.text)["csrfmiddlewaretoken"]
    answer = session.post(
        f"{site.url}/admin/connections/oauthcapability/{capability.pk}/connect/",
        data={"csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    return answer


def consent(session: requests.Session, authorize_url: str, *, allow: bool = True) -> str:
    """Answer the sandbox provider's consent page; returns the callback URL it redirects to."""
    page = session.get(authorize_url, allow_redirects=False, timeout=10)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"), page.text[:500])
    form = hidden_inputs(page.text)
    if allow:
        form["allow"] = "Authorize"
    answer = session.post(authorize_url, data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    return answer.headers["Location"]


def connect(
    site: Any, worker: str = "sandbox", key: str = "sandboxAuth", session: requests.Session | None = None
) -> requests.Response:
    """The whole flow: Connect in the admin, consent at the sandbox provider, the callback. Returns the last page."""
    session = session or site.admin_session()
    start = start_in_admin(site, session, worker, key)
    callback_url = consent(session, start.headers["Location"])
    final = session.get(callback_url, timeout=20)
    assert final.status_code == 200, (final.status_code, final.text[:1000])
    return final
