"""Quirks of the guide's providers, each against a small local server that behaves like the provider."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from connections.exceptions import ReauthorizationRequired
from connections.models import Connection
from connections.oauth.tokens import access_token, token_extra

from ..oauth_helpers import start_in_admin
from .conftest import connect_fake
from .fake_provider import Reply


def expire(conn: Connection) -> None:
    Connection.objects.filter(pk=conn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("fake", ["github"], indirect=True)
def test_github_form_encoded_answer_and_errors_with_http_200(site, fake):
    # GitHub answers form-encoded when the Accept header does not ask for JSON.
    token = {
        "access_token": "gho_formencoded123",
        "scope": "repo,user",
        "token_type": "bearer",
        "refresh_token": "ghr_formencoded456",
        "expires_in": "28800",
    }
    fake.script.append(Reply(body=urlencode(token), content_type="application/x-www-form-urlencoded"))
    conn = connect_fake(site)
    assert conn.access_token == "gho_formencoded123" and conn.refresh_token == "ghr_formencoded456"
    assert conn.granted_scope == "repo,user"
    assert timedelta(hours=7) < conn.expires_at - timezone.now() <= timedelta(hours=8)
    assert fake.token_requests[0]["_accept"] == "application/json"  # and we do ask for JSON

    # A failed code exchange arrives as HTTP 200 with an `error` field: a failure, nothing stored.
    fake.script.append(
        Reply(
            body=json.dumps(
                {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
            )
        )
    )
    session = site.admin_session()
    start = start_in_admin(site, session, "fake", "fakeAuth")
    page = session.get(start.headers["Location"], timeout=20)
    assert page.status_code == 400
    assert "bad_verification_code" in page.text and "incorrect or expired" in page.text
    conn.refresh_from_db()
    assert conn.access_token == "gho_formencoded123"

    # A dead refresh token: GitHub answers HTTP 200 with error=bad_refresh_token. The grant is gone.
    expire(conn)
    fake.revoked_refresh_tokens.add("ghr_formencoded456")
    with pytest.raises(ReauthorizationRequired, match="bad_refresh_token"):
        access_token("fake", "fakeAuth")
    conn.refresh_from_db()
    assert conn.status == Connection.Status.NEEDS_REAUTH and conn.refresh_token == "ghr_formencoded456"


def test_google_offline_access_and_refreshes_without_a_new_refresh_token(site, fake):
    fake.style = "google"
    # As the guide's Google example (checked below) asks: offline access, consent every time.
    capability = connect_fake_with_params(site, fake, {"access_type": "offline", "prompt": "consent"})
    assert fake.authorizations[-1]["access_type"] == "offline"
    assert fake.authorizations[-1]["prompt"] == "consent"
    original_refresh = capability.refresh_token

    for _ in range(2):  # each refresh answers without refresh_token; the stored one is kept and reused
        expire(capability)
        assert access_token("fake", "fakeAuth") == fake.issued[-1]["access_token"]
        assert "refresh_token" not in fake.issued[-1]
        capability.refresh_from_db()
        assert capability.refresh_token == original_refresh
    assert [r["refresh_token"] for r in fake.refresh_requests] == [original_refresh] * 2


def connect_fake_with_params(site, fake, params: dict[str, str]) -> Connection:
    from connections.models import OAuthCapability

    OAuthCapability.objects.filter(worker__slug="fake", key="fakeAuth").update(authorization_params=params)
    return connect_fake(site)


def test_google_example_worker_asks_for_offline_access():
    from connections.registry import get_capability

    capability = get_capability("google", "googleAuth")
    assert capability.authorization_params == {"access_type": "offline", "prompt": "consent"}


def test_salesforce_without_expires_in_uses_access_token_expire_ms(site, fake):
    fake.style = "salesforce"
    from connections.models import OAuthCapability

    OAuthCapability.objects.filter(worker__slug="fake", key="fakeAuth").update(access_token_expire_ms=3_600_000)
    conn = connect_fake(site)
    assert "expires_in" not in fake.issued[-1]
    remaining = conn.expires_at - timezone.now()
    assert timedelta(minutes=59) < remaining <= timedelta(hours=1)
    # The rest of the response is kept (encrypted): Salesforce's instance_url is needed for API calls.
    assert token_extra("fake", "fakeAuth")["instance_url"] == "https://example.my.salesforce.test"
    expire(conn)
    access_token("fake", "fakeAuth")
    conn.refresh_from_db()
    assert timedelta(minutes=59) < conn.expires_at - timezone.now() <= timedelta(hours=1)
    assert conn.extra["instance_url"] == "https://example.my.salesforce.test"


def test_without_any_lifetime_the_token_is_used_until_the_provider_says_401(site, fake):
    fake.expires_in = None
    conn = connect_fake(site)
    assert conn.expires_at is None
    assert access_token("fake", "fakeAuth") == conn.access_token
    assert fake.refresh_requests == []


def test_a_code_exchange_without_refresh_token_keeps_the_stored_one(site, fake):
    conn = connect_fake(site)
    stored = conn.refresh_token
    fake.script.append(
        Reply(body=json.dumps({"access_token": "at-second-connect", "token_type": "bearer", "expires_in": 3600}))
    )
    conn = connect_fake(site)
    assert conn.access_token == "at-second-connect" and conn.refresh_token == stored


def test_pkce_can_be_turned_off_for_providers_that_reject_it(site, fake):
    from connections.models import OAuthCapability

    OAuthCapability.objects.filter(key="fakeAuth").update(use_pkce=False)
    connect_fake(site)
    assert "code_challenge" not in fake.authorizations[-1]
    assert "code_verifier" not in fake.token_requests[-1]
    OAuthCapability.objects.filter(key="fakeAuth").update(use_pkce=True)
    connect_fake(site)
    assert fake.authorizations[-1]["code_challenge_method"] == "S256"
    assert len(fake.token_requests[-1]["code_verifier"]) >= 43
