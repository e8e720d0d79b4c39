"""A hostile or broken token endpoint: bounded in time and size, every answer checked, every failure one clear line.

Each behaviour is met where a user meets it: `access_token()`, `workers oauth refresh` and
`workers oauth start` as processes, the callback over HTTP, `capability.session()`, and
`workers exec --local`; the provider is the fake one on 127.0.0.1 (`hostile(...)`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests
from django.test.utils import override_settings
from django.utils import timezone

from connections import registry
from connections.exceptions import TokenRefreshError
from connections.models import Connection, OAuthCapability
from connections.oauth.tokens import access_token

from ..conftest import ROOT, subprocess_env
from ..oauth_helpers import start_in_admin
from .fake_provider import FakeProvider, Reply, hostile, running

HOSTILE_MODULE = "tests.oauth.workers_hostile"
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def expire(conn: Connection) -> None:
    Connection.objects.filter(pk=conn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def snapshot(conn: Connection) -> tuple[str, str, str]:
    conn.refresh_from_db()
    return conn.access_token, conn.refresh_token, conn.token_type


def manage(site: Any, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ...` in its own process, as a person would type it."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(site.url, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    # The command's own output; the log records (timestamped) go to stderr as well.
    lines = [line for line in result.stderr.strip().splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), result.stderr
    return lines[0]


# --- the refresh, through access_token() ---------------------------------------------------

REFUSED = {
    "mac": ("unsupported_token_type", "only bearer tokens are supported"),
    "object-token": ("invalid_response", "access_token in the token response is not a non-empty string"),
    "newline-token": ("invalid_response", "access_token in the token response holds characters no token has"),
    "huge": ("response_too_large", "more than 65536 bytes"),
    "huge-unannounced": ("response_too_large", "more than 65536 bytes"),
    "long-scope": ("invalid_response", "scope in the token response is too long or holds control characters"),
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_a_refresh_answer_we_cannot_use_is_refused_and_nothing_is_lost(fake, fake_connected, kind):
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    fake.script.append(hostile(kind))
    with pytest.raises(TokenRefreshError) as caught:
        access_token("fake", "fakeAuth")
    code, text = REFUSED[kind]
    message = str(caught.value)
    assert code in message and text in message and "\n" not in message
    assert not caught.value.retryable
    assert "{'value'" not in message and "xxxxxxxx" not in message  # no repr, no body
    conn.refresh_from_db()
    assert conn.status == Connection.Status.REFRESH_FAILING and code in conn.last_error
    assert snapshot(conn) == before  # the refresh token is kept, nothing of the answer stored


def test_a_nul_in_the_answer_is_an_unreadable_answer_and_nothing_is_lost(fake, fake_connected):
    # PostgreSQL stores NUL in no text column: it must never reach one (it was a DataError there).
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    fake.script.append(hostile("nul-scope"))
    with pytest.raises(TokenRefreshError, match="NUL character"):
        access_token("fake", "fakeAuth")
    conn.refresh_from_db()
    assert conn.status == Connection.Status.REFRESH_FAILING
    assert snapshot(conn) == before


@pytest.mark.parametrize("kind", ["1e30", "-100", "NaN", "Infinity", '"soon"'])
def test_an_unusable_expires_in_falls_back_to_the_documented_lifetime(fake, fake_connected, kind):
    conn = fake_connected
    expire(conn)
    fake.script.append(hostile(kind))
    token = access_token("fake", "fakeAuth")  # no OverflowError, no "unreadable" failure
    conn.refresh_from_db()
    assert token == conn.access_token and conn.status == Connection.Status.CONNECTED
    assert conn.expires_at is None  # unknown: valid until the provider answers 401
    assert access_token("fake", "fakeAuth") == token  # and not refreshed on every call
    assert len(fake.refresh_requests) == 1

    # With access_token_expire_ms declared, that lifetime applies.
    OAuthCapability.objects.filter(pk=conn.capability_id).update(access_token_expire_ms=3_600_000)
    expire(conn)
    fake.script.append(hostile(kind))
    access_token("fake", "fakeAuth")
    conn.refresh_from_db()
    assert timezone.now() + timedelta(minutes=55) < conn.expires_at < timezone.now() + timedelta(minutes=61)


@pytest.mark.parametrize("kind", ["drip", "drip-headers"])
def test_a_dripped_answer_stops_at_the_deadline(fake, fake_connected, kind):
    conn = fake_connected
    before = snapshot(conn)
    expire(conn)
    fake.script.append(hostile(kind))  # a valid answer that takes 20 s or more, a byte every 0.2 s
    started = time.monotonic()
    with override_settings(WORKERS_HTTP_TIMEOUT=1), pytest.raises(TokenRefreshError, match="timeout") as caught:
        access_token("fake", "fakeAuth")
    assert time.monotonic() - started < 8  # one deadline, not one per read
    assert caught.value.retryable
    conn.refresh_from_db()
    assert conn.status == Connection.Status.REFRESH_FAILING and snapshot(conn) == before


def test_retry_after_is_capped_and_read_as_an_http_date(fake, fake_connected):
    conn = fake_connected
    expire(conn)
    fake.script.append(hostile("retry-after-huge"))
    with pytest.raises(TokenRefreshError) as caught:
        access_token("fake", "fakeAuth")
    assert caught.value.retry_after == 600  # WORKERS_RETRY_AFTER_MAX, not three years
    fake.script.append(hostile("retry-after-huge"))
    with override_settings(WORKERS_RETRY_AFTER_MAX=5), pytest.raises(TokenRefreshError) as caught:
        access_token("fake", "fakeAuth")
    assert caught.value.retry_after == 5
    fake.script.append(hostile("retry-after-date"))  # two minutes from now, as an HTTP date
    with pytest.raises(TokenRefreshError) as caught:
        access_token("fake", "fakeAuth")
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 121


# --- the CLI -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("mac", "only bearer tokens are supported"),
        ("huge-unannounced", "response_too_large"),
        ("escape", "\\x1b[2J\\x1b[31mYOU ARE HACKED\\x07"),
    ],
)
def test_oauth_refresh_reports_a_hostile_answer_in_one_escaped_line(site, fake, fake_connected, kind, expected):
    fake.script.append(hostile(kind))
    result = manage(site, "workers", "oauth", "refresh", "fakeAuth")
    line = one_line_failure(result)
    assert expected in line and "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert Connection.objects.get(pk=fake_connected.pk).status == Connection.Status.REFRESH_FAILING
    if kind == "escape":  # shown escaped by `oauth status` too
        status = manage(site, "workers", "oauth", "status")
        assert status.returncode == 0 and "\\x1b[31m" in status.stdout and "\x1b" not in status.stdout


def test_oauth_refresh_survives_an_absurd_expires_in(site, fake, fake_connected):
    fake.script.append(hostile("1e30"))
    result = manage(site, "workers", "oauth", "refresh", "fakeAuth")
    assert result.returncode == 0, result.stderr
    assert "Refreshed fakeAuth" in result.stdout and "expires unknown" in result.stdout


def test_oauth_start_prints_the_providers_error_description_escaped(site, fake):
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "workers", "oauth", "start", "fakeAuth", "--no-browser", "--timeout", "60"],
        cwd=ROOT,
        env=subprocess_env(site.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = next(line.strip() for line in proc.stdout if line.startswith("http"))
    state = parse_qs(urlparse(url).query)["state"][0]
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mred"
    page = requests.get(
        f"{site.url}/oauth/callback/?state={state}&error=access_denied&error_description={quote(evil)}", timeout=20
    )
    assert page.status_code == 400 and "\x1b" not in page.text and "\\x1b[31mred" in page.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err
    assert "\x1b" not in err and "\x07" not in err
    assert "access_denied" in err and "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred" in err
    assert len(err.strip().splitlines()) == 1


# --- the callback, over HTTP ---------------------------------------------------------------

CALLBACK_REFUSED = {
    "mac": "only bearer tokens are supported",
    "object-token": "not a non-empty string",
    "huge-unannounced": "response_too_large",
    "drip": "no complete answer within 1 s",
}


def callback_page(site: Any) -> requests.Response:
    session = site.admin_session()
    start = start_in_admin(site, session, "fake", "fakeAuth")
    return session.get(start.headers["Location"], timeout=30)  # /authorize redirects to the callback


@pytest.mark.parametrize("kind", list(CALLBACK_REFUSED))
def test_the_callback_refuses_a_hostile_code_exchange_with_a_clear_400(site, fake, kind):
    fake.script.append(hostile(kind))
    started = time.monotonic()
    with override_settings(WORKERS_HTTP_TIMEOUT=1):
        page = callback_page(site)
    assert time.monotonic() - started < 15
    assert page.status_code == 400, (page.status_code, page.text[:500])
    assert "refused the code exchange" in page.text and CALLBACK_REFUSED[kind] in page.text
    assert "internal error" not in page.text
    assert not Connection.objects.filter(capability__key="fakeAuth", status=Connection.Status.CONNECTED).exists()


def test_the_callback_accepts_an_absurd_expires_in_with_the_fallback_lifetime(site, fake):
    fake.script.append(hostile("1e30"))
    page = callback_page(site)
    assert page.status_code == 200 and "Connected fakeAuth" in page.text, page.text[:500]
    assert Connection.objects.get(capability__key="fakeAuth").expires_at is None


def test_the_admin_shows_a_providers_escape_sequence_escaped(site, fake, fake_connected):
    expire(fake_connected)
    fake.script.append(hostile("escape"))
    with pytest.raises(TokenRefreshError):
        access_token("fake", "fakeAuth")
    session = site.admin_session()
    page = session.get(
        f"{site.url}/admin/connections/oauthcapability/{fake_connected.capability_id}/change/", timeout=10
    )
    assert page.status_code == 200
    assert "\\x1b[31mYOU ARE HACKED" in page.text and "\x1b" not in page.text


def test_the_admin_escapes_an_error_stored_before_provider_text_was_escaped(site, fake, fake_connected):
    from connections.models import Connection

    Connection.objects.filter(pk=fake_connected.pk).update(last_error="refused: \x1b]0;pwned\x07 \x1b[2J")
    page = site.admin_session().get(
        f"{site.url}/admin/connections/oauthcapability/{fake_connected.capability_id}/change/", timeout=10
    )
    assert page.status_code == 200
    assert "refused: \\x1b]0;pwned\\x07" in page.text and "\x1b" not in page.text and "\x07" not in page.text


# --- capability.session() and the runner ---------------------------------------------------


def test_session_requests_get_a_default_timeout(fake, fake_connected):
    capability = registry.get_capability("fake", "fakeAuth")
    assert capability.session().get(f"{fake.url}/api").json() == {"ok": True}
    fake.api_script.append(Reply(body='{"ok": true}', delay=10))
    started = time.monotonic()
    with override_settings(WORKERS_SESSION_TIMEOUT=1), pytest.raises(requests.Timeout):
        capability.session().get(f"{fake.url}/api")
    assert time.monotonic() - started < 8
    fake.api_script.append(Reply(body='{"ok": true}', delay=2))  # a timeout of its own is kept
    with override_settings(WORKERS_SESSION_TIMEOUT=1):
        assert capability.session().get(f"{fake.url}/api", timeout=10).json() == {"ok": True}


def test_exec_local_with_a_three_year_retry_after_ends_within_the_cap(site):
    from django.conf import settings

    from connections.deploy import deploy

    modules = [*settings.WORKER_MODULES, HOSTILE_MODULE]
    with override_settings(WORKER_MODULES=modules):
        registry.clear_cache()
        deploy()
    registry.clear_cache()
    Connection.objects.update_or_create(
        capability=OAuthCapability.objects.get(worker__slug="hostile", key="hostileAuth"),
        defaults={
            "status": Connection.Status.CONNECTED,
            "access_token": "at-hostile-0123456789",
            "token_type": "Bearer",
            "expires_at": timezone.now() + timedelta(hours=1),
            "connected_at": timezone.now(),
        },
    )
    with running(FakeProvider()) as api:
        api.api_script.extend([hostile("retry-after-huge"), hostile("retry-after-huge")])
        started = time.monotonic()
        result = manage(
            site,
            "workers",
            "exec",
            "callApi",
            "--local",
            "--input",
            f'{{"url": "{api.url}/api"}}',
            timeout=90,
            WORKER_MODULES=",".join(modules),
            WORKERS_RETRY_AFTER_MAX="1",
            WORKERS_TASK_MAX_RETRIES="1",
        )
        assert time.monotonic() - started < 60
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert "429" in result.stderr
        assert len(api.api_requests) == 2  # tried, waited the capped second, tried again, gave up
