"""No token or secret in any log line, exception text or admin page, across the flow, refreshes and failures."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from connections.exceptions import ReauthorizationRequired, TokenRefreshError
from connections.models import Connection, OAuthCapability, Secret
from connections.oauth.tokens import access_token

from ..oauth_helpers import connect
from .conftest import connect_fake
from .fake_provider import CLIENT_SECRET, Reply


def secret_values(fake) -> set[str]:
    values = {CLIENT_SECRET}
    values |= {s.value for s in Secret.objects.all() if len(s.value) >= 8}
    for conn in Connection.objects.all():
        values |= {v for v in (conn.access_token, conn.refresh_token) if v}
    values |= set(get_access_token_model().objects.values_list("token", flat=True))
    values |= set(get_refresh_token_model().objects.values_list("token", flat=True))
    for token in fake.issued:
        values |= {token.get("access_token", ""), token.get("refresh_token", "")}
    for request in fake.token_requests:  # authorization codes and PKCE verifiers we sent
        values |= {request.get("code", ""), request.get("code_verifier", "")}
    return {v for v in values if v}


def test_nothing_secret_in_logs_errors_or_admin_pages(site, fake, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []

    # The sandbox flow, a refresh, and a revoked grant.
    connect(site)
    Connection.objects.filter(capability__key="sandboxAuth").update(expires_at=timezone.now() - timedelta(seconds=1))
    access_token("sandbox", "sandboxAuth")

    # The fake provider: connect, then each kind of failure.
    conn = connect_fake(site)
    for reply in (
        Reply(status=500, body="boom"),
        Reply(body="<html>login</html>", content_type="text/html"),
        Reply(status=400, body='{"error": "invalid_grant", "error_description": "revoked"}'),
    ):
        Connection.objects.filter(pk=conn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        fake.script.append(reply)
        with pytest.raises((TokenRefreshError, ReauthorizationRequired)) as caught:
            access_token("fake", "fakeAuth")
        errors.append(str(caught.value))
        errors.append(repr(caught.value))
    conn.refresh_from_db()
    errors.append(conn.last_error)

    # Every admin page a staff member would look at.
    session = site.admin_session()
    pages = [
        "/admin/",
        "/admin/connections/oauthcapability/",
        "/admin/connections/secret/",
        "/admin/connections/worker/",
    ]
    for capability in OAuthCapability.objects.all():
        pages += [
            f"/admin/connections/oauthcapability/{capability.pk}/change/",
            f"/admin/connections/oauthcapability/{capability.pk}/history/",
        ]
    for secret in Secret.objects.all():
        pages += [f"/admin/connections/secret/{secret.pk}/change/", f"/admin/connections/secret/{secret.pk}/history/"]
    for worker_pk in Connection.objects.values_list("capability__worker", flat=True):
        pages.append(f"/admin/connections/worker/{worker_pk}/change/")
    html = []
    for page in pages:
        answer = session.get(site.url + page, timeout=10)
        assert answer.status_code == 200, page
        html.append(answer.text)
    for model in ("accesstoken", "refreshtoken", "grant", "idtoken"):
        assert session.get(f"{site.url}/admin/oauth2_provider/{model}/", timeout=10).status_code == 404

    values = secret_values(fake)
    assert len(values) >= 8
    logs = "\n".join(record.getMessage() for record in caplog.records) + "\n" + caplog.text
    assert "Refreshed the token" in logs  # the capture did see our logging
    for value in values:
        assert value not in logs, "a secret or token appears in the logs"
        assert all(value not in text for text in errors), "a secret or token appears in an exception text"
        assert all(value not in text for text in html), "a secret or token appears in an admin page"
