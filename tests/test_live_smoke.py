"""The live site serves the admin and the sandbox provider over real HTTP."""

from __future__ import annotations


def test_admin_login_over_http(site):
    session = site.admin_session()
    page = session.get(f"{site.url}/admin/connections/oauthcapability/", timeout=10)
    assert page.status_code == 200
    assert "sandboxAuth" in page.text
