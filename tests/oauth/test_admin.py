"""Connect / Reconnect / Disconnect in the admin: POST with CSRF, a dedicated permission, health shown."""

from __future__ import annotations

import re
from datetime import timedelta

import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from connections.models import Connection, OAuthCapability

from ..conftest import csrf_from
from .conftest import connect_fake


def capability(key: str = "sandboxAuth") -> OAuthCapability:
    return OAuthCapability.objects.get(key=key)


def staff(username: str, *perms: str) -> None:
    user = get_user_model().objects.create_user(username, password="pw-for-staff-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_oauthcapability", *perms]))


def test_connect_requires_post_with_csrf(site):
    session = site.admin_session()
    url = f"{site.url}/admin/connections/oauthcapability/{capability().pk}/connect/"
    assert session.get(url, allow_redirects=False, timeout=10).status_code == 405
    assert session.post(url, allow_redirects=False, timeout=10).status_code == 403  # no CSRF token


def test_connect_requires_the_dedicated_permission(site):
    staff("viewer")
    staff("connector", "connect_oauthcapability")
    cap = capability()
    page_url = f"{site.url}/admin/connections/oauthcapability/{cap.pk}/change/"
    for username, allowed in (("viewer", False), ("connector", True)):
        session = site.admin_session(username, "pw-for-staff-123")
        page = session.get(page_url, timeout=10)
        assert page.status_code == 200
        assert ("Connect</button>" in page.text) is allowed
        answer = session.post(
            f"{page_url.rsplit('/change/', 1)[0]}/connect/",
            data={"csrfmiddlewaretoken": csrf_from(page.text)},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == (302 if allowed else 403)
    anonymous = requests.post(
        f"{site.url}/admin/connections/oauthcapability/{cap.pk}/connect/", allow_redirects=False, timeout=10
    )
    assert anonymous.status_code in (302, 403) and "/sandbox/" not in anonymous.headers.get("Location", "")


def test_health_badges_filter_and_disconnect_with_revocation(site, fake):
    conn = connect_fake(site)
    session = site.admin_session()
    listing = session.get(f"{site.url}/admin/connections/oauthcapability/", timeout=10).text
    badges = re.findall(
        r'<a href="[^"]*/(\d+)/change/">(\w+)</a>.*?border-radius:10px[^>]*>([^<]+)</span>', listing, re.S
    )
    assert ("fakeAuth", "connected") in [(key, badge) for _, key, badge in badges]
    assert ("sandboxAuth", "not connected") in [(key, badge) for _, key, badge in badges]

    Connection.objects.filter(pk=conn.pk).update(
        status=Connection.Status.REFRESH_FAILING, failure_count=2, last_error="unavailable (HTTP 503)"
    )
    failing = session.get(f"{site.url}/admin/connections/oauthcapability/?health=refresh_failing", timeout=10).text
    assert "fakeAuth" in failing and "sandboxAuth" not in failing
    Connection.objects.filter(pk=conn.pk).update(
        status=Connection.Status.CONNECTED, expires_at=timezone.now() + timedelta(seconds=30)
    )
    expiring = session.get(f"{site.url}/admin/connections/oauthcapability/?health=expiring", timeout=10).text
    assert "fakeAuth" in expiring and "sandboxAuth" not in expiring

    page_url = f"{site.url}/admin/connections/oauthcapability/{conn.capability_id}/change/"
    page = session.get(page_url, timeout=10)
    assert "Reconnect</button>" in page.text and "Disconnect</button>" in page.text
    assert re.search(r"Granted scopes:</label>\s*<div class=\"readonly\">read</div>", page.text)
    refresh_token = Connection.objects.get(pk=conn.pk).refresh_token
    answer = session.post(
        page_url.replace("/change/", "/disconnect/"), data={"csrfmiddlewaretoken": csrf_from(page.text)}, timeout=10
    )
    assert answer.status_code == 200 and "Disconnected fakeAuth" in answer.text
    assert [r["token"] for r in fake.revocations][:1] == [refresh_token]  # RFC 7009 at the provider
    conn.refresh_from_db()
    assert conn.status == Connection.Status.NOT_CONNECTED and conn.access_token == "" and conn.refresh_token == ""


def test_missing_secrets_are_warned_about_and_block_connecting(site, fake):
    from connections.models import Secret

    Secret.objects.filter(worker__slug="fake", name="FAKE_CLIENT_ID").delete()
    session = site.admin_session()
    page_url = f"{site.url}/admin/connections/oauthcapability/{capability('fakeAuth').pk}/change/"
    page = session.get(page_url, timeout=10)
    assert "FAKE_CLIENT_ID" in page.text and "not set" in page.text
    answer = session.post(
        page_url.replace("/change/", "/connect/"), data={"csrfmiddlewaretoken": csrf_from(page.text)}, timeout=10
    )
    assert "FAKE_CLIENT_ID" in answer.text and "workers env set" in answer.text
    assert fake.authorizations == []


def test_an_insecure_endpoint_is_refused_with_a_message_not_an_error_page(site):
    OAuthCapability.objects.filter(key="sandboxAuth").update(token_endpoint="http://provider.example.test/token")
    session = site.admin_session()
    page_url = f"{site.url}/admin/connections/oauthcapability/{capability().pk}/change/"
    page = session.get(page_url, timeout=10)
    answer = session.post(
        page_url.replace("/change/", "/connect/"), data={"csrfmiddlewaretoken": csrf_from(page.text)}, timeout=10
    )
    assert answer.status_code == 200 and "is not https" in answer.text


def test_disconnect_requires_post_csrf_and_the_permission(site, fake):
    connect_fake(site)
    staff("viewer")
    url = f"{site.url}/admin/connections/oauthcapability/{capability('fakeAuth').pk}/disconnect/"
    admin_session = site.admin_session()
    assert admin_session.get(url, allow_redirects=False, timeout=10).status_code == 405
    assert admin_session.post(url, allow_redirects=False, timeout=10).status_code == 403  # no CSRF token
    viewer = site.admin_session("viewer", "pw-for-staff-123")
    page = viewer.get(url.replace("/disconnect/", "/change/"), timeout=10)
    assert "Disconnect</button>" not in page.text
    denied = viewer.post(url, data={"csrfmiddlewaretoken": csrf_from(page.text)}, allow_redirects=False, timeout=10)
    assert denied.status_code == 403
    assert Connection.objects.get(capability__key="fakeAuth").status == Connection.Status.CONNECTED
    assert fake.revocations == []


def test_connecting_is_recorded_in_the_admin_history(site, fake):
    connect_fake(site)
    history = site.admin_session().get(
        f"{site.url}/admin/connections/oauthcapability/{capability('fakeAuth').pk}/history/", timeout=10
    )
    assert "Connected" in history.text
