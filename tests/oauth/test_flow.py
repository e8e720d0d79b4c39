"""The authorization-code flow against the sandbox provider (django-oauth-toolkit) over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.test.utils import override_settings
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views.mixins import OAuthLibMixin

from connections.exceptions import ReauthorizationRequired
from connections.models import AuthorizationAttempt, Connection, Secret
from connections.oauth.tokens import access_token

from ..oauth_helpers import connect, consent, start_in_admin

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


def sandbox_connection() -> Connection:
    return Connection.objects.get(capability__worker__slug="sandbox", capability__key="sandboxAuth")


def _drop_cached_servers() -> None:
    # Each django-oauth-toolkit view caches an oauthlib server, built with the token lifetime in
    # force at its first request, on its class (`_oauthlib_core`).
    pending = [OAuthLibMixin]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "_oauthlib_core" in vars(cls):
            delattr(cls, "_oauthlib_core")


@contextmanager
def short_lived(seconds: int) -> Iterator[None]:
    """The sandbox provider issues tokens living `seconds`.

    Set on django-oauth-toolkit's settings object itself (overriding OAUTH2_PROVIDER makes it
    reload, which races with the live server thread), with the views' cached servers dropped
    before and after, so neither this test nor the next one sees a stale lifetime.
    """
    previous = oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS
    oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS = seconds
    _drop_cached_servers()
    try:
        yield
    finally:
        oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS = previous
        _drop_cached_servers()


def api_me(site, token: str) -> requests.Response:
    return requests.get(f"{site.url}/sandbox/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_connect_use_refresh_rotate_and_revoke(site):
    # 4 s tokens: refreshed from 2 s before expiry (half their life), so a slow machine still hands
    # out the first one; one refresh more if it did not is counted, not failed.
    with short_lived(4):
        final = connect(site)
        assert "Connected sandboxAuth" in final.text
        assert "/admin/connections/oauthcapability/" in final.url  # back on the capability's page

        conn = sandbox_connection()
        assert conn.status == Connection.Status.CONNECTED
        assert conn.granted_scope == "read items"
        assert conn.has_refresh_token and conn.expires_at is not None
        first_refresh = conn.refresh_token

        token = access_token("sandbox", "sandboxAuth")
        refreshed = sandbox_connection().refresh_count
        me = api_me(site, token)
        assert me.status_code == 200 and me.json()["username"] == "admin"

        time.sleep(4.2)  # past expiry
        assert api_me(site, token).status_code == 401
        renewed = access_token("sandbox", "sandboxAuth")
        assert renewed != token
        assert api_me(site, renewed).status_code == 200

        conn = sandbox_connection()
        assert conn.refresh_count == refreshed + 1 and conn.last_refreshed_at is not None
        assert conn.refresh_token != first_refresh  # the rotated refresh token was stored
        assert RefreshToken.objects.get(token=first_refresh).revoked is not None

        # Revoke the grant at the provider (RFC 7009), as a user would from the provider's settings.
        client_secret = Secret.objects.get(worker__slug="sandbox", name="SANDBOX_CLIENT_SECRET").value
        client_id = Secret.objects.get(worker__slug="sandbox", name="SANDBOX_CLIENT_ID").value
        revoked = requests.post(
            f"{site.url}/sandbox/o/revoke_token/",
            timeout=10,
            data={
                "token": conn.refresh_token,
                "token_type_hint": "refresh_token",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        assert revoked.status_code == 200

        time.sleep(4.2)
        with pytest.raises(ReauthorizationRequired) as caught:
            access_token("sandbox", "sandboxAuth")
        assert "reconnect sandboxAuth" in str(caught.value)
        conn = sandbox_connection()
        assert conn.status == Connection.Status.NEEDS_REAUTH
        assert "invalid_grant" in conn.last_error
        assert conn.has_refresh_token  # never discarded, even when refused

        # A reconnect heals it.
        connect(site)
        assert sandbox_connection().status == Connection.Status.CONNECTED
        assert api_me(site, access_token("sandbox", "sandboxAuth")).status_code == 200


def test_authorization_url_carries_state_pkce_scope_and_params(site):
    session = site.admin_session()
    start = start_in_admin(site, session, "sandbox", "sandboxAuth")
    url = urlparse(start.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/sandbox/o/authorize/"
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == f"{site.url}/oauth/callback/"
    assert query["scope"] == "read items"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 22  # 128 bits in base64url; ours carry 256
    other = urlparse(start_in_admin(site, session, "sandbox", "sandboxAuth").headers["Location"])
    assert parse_qs(other.query)["state"][0] != query["state"]
    # Only a hash of the state is stored.
    assert not AuthorizationAttempt.objects.filter(state_hash=query["state"]).exists()


# --- bad callbacks: a clear page, nothing stored, an existing token untouched ------------


@pytest.fixture
def connected(site):
    connect(site)
    conn = sandbox_connection()
    return site, (conn.access_token, conn.refresh_token, conn.expires_at)


def assert_unchanged(before) -> None:
    conn = sandbox_connection()
    assert (conn.access_token, conn.refresh_token, conn.expires_at) == before
    assert conn.status == Connection.Status.CONNECTED


def pending_callback(site, session=None):
    """Start a reconnect and consent; return (session, callback URL) without following it."""
    session = session or site.admin_session()
    start = start_in_admin(site, session, "sandbox", "sandboxAuth")
    return session, consent(session, start.headers["Location"])


def test_unknown_and_missing_state(connected):
    site, before = connected
    session = site.admin_session()
    page = session.get(f"{site.url}/oauth/callback/?state=not-a-state&code=abc", timeout=10)
    assert page.status_code == 400 and "unknown" in page.text
    page = session.get(f"{site.url}/oauth/callback/?code=abc", timeout=10)
    assert page.status_code == 400 and "no state" in page.text
    assert_unchanged(before)


def test_reused_state(connected):
    site, before = connected
    session, callback = pending_callback(site)
    assert session.get(callback, timeout=20).status_code == 200
    after_first = sandbox_connection()
    replay = session.get(callback, timeout=10)
    assert replay.status_code == 400 and "already used" in replay.text
    assert sandbox_connection().access_token == after_first.access_token


def test_expired_state(connected):
    site, before = connected
    with override_settings(WORKERS_STATE_TTL=1):
        session, callback = pending_callback(site)
        time.sleep(1.3)
        page = session.get(callback, timeout=10)
    assert page.status_code == 400 and "expired" in page.text
    assert_unchanged(before)


def test_state_from_another_session(connected):
    site, before = connected
    _, callback = pending_callback(site)
    intruder = site.admin_session()  # same user, another browser: not the session that started it
    page = intruder.get(callback, timeout=10)
    assert page.status_code == 400 and "another browser session" in page.text
    anonymous = requests.get(callback, timeout=10)
    assert anonymous.status_code == 400
    assert_unchanged(before)


def test_missing_code(connected):
    site, before = connected
    session, callback = pending_callback(site)
    state = parse_qs(urlparse(callback).query)["state"][0]
    page = session.get(f"{site.url}/oauth/callback/?state={state}", timeout=10)
    assert page.status_code == 400 and "no authorization code" in page.text
    assert_unchanged(before)


def test_access_denied_at_the_provider(connected):
    site, before = connected
    session = site.admin_session()
    start = start_in_admin(site, session, "sandbox", "sandboxAuth")
    callback = consent(session, start.headers["Location"], allow=False)
    assert "error=access_denied" in callback
    page = session.get(callback, timeout=10)
    assert page.status_code == 400 and "denied" in page.text and "access_denied" in page.text
    assert_unchanged(before)


@pytest.mark.parametrize(
    "error",
    [
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "something_else",
    ],
)
def test_every_rfc6749_error(connected, error):
    site, before = connected
    session, callback = pending_callback(site)
    state = parse_qs(urlparse(callback).query)["state"][0]
    page = session.get(
        f"{site.url}/oauth/callback/",
        params={"state": state, "error": error, "error_description": "details <b>here</b>"},
        timeout=10,
    )
    assert page.status_code == 400 and error in page.text
    assert "<b>here</b>" not in page.text  # escaped, not rendered
    assert_unchanged(before)


def test_code_rejected_by_the_provider(connected):
    site, before = connected
    session, callback = pending_callback(site)
    state = parse_qs(urlparse(callback).query)["state"][0]
    page = session.get(f"{site.url}/oauth/callback/", params={"state": state, "code": "forged"}, timeout=20)
    assert page.status_code == 400 and "refused the code exchange" in page.text and "invalid_grant" in page.text
    assert_unchanged(before)


def test_a_reconnect_replaces_the_tokens(connected):
    site, before = connected
    session, callback = pending_callback(site)
    assert session.get(callback, timeout=20).status_code == 200
    conn = sandbox_connection()
    assert conn.access_token != before[0]
    assert AccessToken.objects.filter(token=conn.access_token).exists()
