"""`workers oauth start | status | refresh | disconnect` and `workers env pull`."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from connections.models import Connection
from connections.sdk.worker import oauth_env_name

from ..conftest import ROOT, subprocess_env
from ..oauth_helpers import consent
from .conftest import connect_fake


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("workers", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def start_subprocess(site, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "workers", "oauth", "start", *args],
        cwd=ROOT,
        env=subprocess_env(site.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("http"):
            return proc, line.strip()
    raise AssertionError(f"no URL printed: {proc.communicate()}")


def test_oauth_start_waits_for_the_callback(site):
    proc, url = start_subprocess(site, "sandboxAuth", "--no-browser", "--timeout", "60")
    assert url.startswith(f"{site.url}/sandbox/o/authorize/?")
    session = site.admin_session()  # the person's browser, logged in at the provider
    callback = session.get(consent(session, url), timeout=20)
    assert callback.status_code == 200 and "Connected sandboxAuth" in callback.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Connected sandboxAuth." in out
    assert Connection.objects.get(capability__key="sandboxAuth").status == Connection.Status.CONNECTED


def test_oauth_start_reports_the_providers_error(site):
    proc, url = start_subprocess(site, "sandboxAuth", "--no-browser", "--timeout", "60")
    session = site.admin_session()
    page = session.get(consent(session, url, allow=False), timeout=20)
    assert page.status_code == 400
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "access_denied" in err and len(err.strip().splitlines()) == 1


def test_oauth_start_times_out(site):
    proc, _ = start_subprocess(site, "sandboxAuth", "--no-browser", "--timeout", "1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "No callback within 1 s" in err


def test_status_refresh_and_disconnect(site, fake):
    conn = connect_fake(site)
    status = run("oauth", "status")
    assert "fake:fakeAuth" in status and "connected" in status
    assert "sandbox:sandboxAuth" in status and "not connected" in status

    before = conn.access_token
    assert "Refreshed fakeAuth" in run("oauth", "refresh", "fakeAuth")
    conn.refresh_from_db()
    assert conn.access_token != before and len(fake.refresh_requests) == 1

    with pytest.raises(CommandError, match="needs re-authorization"):
        fake.revoked_refresh_tokens.add(conn.refresh_token)
        run("oauth", "refresh", "fakeAuth")
    assert "needs reauthorization" in run("oauth", "status")

    assert "Disconnected fakeAuth" in run("oauth", "disconnect", "fakeAuth")
    assert fake.revocations and fake.revocations[0]["token_type_hint"] == "refresh_token"
    assert "not connected" in run("oauth", "status", "--worker", "fake")
    with pytest.raises(CommandError, match="no OAuth capability|No active OAuth capability"):
        run("oauth", "refresh", "nope")


def test_env_pull_writes_secrets_and_a_fresh_token(site, fake, tmp_path):
    conn = connect_fake(site)
    Connection.objects.filter(pk=conn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=keep-me\nFAKE_CLIENT_ID=stale\n")
    out = run("env", "pull", "--worker", "fake", "--file", str(target))
    assert "mode 0600" in out
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in target.read_text().splitlines())
    assert lines["SECRET_KEY"] == "keep-me"  # other lines are kept
    assert lines["FAKE_CLIENT_ID"] == "fake-client-id"
    name = oauth_env_name("fake-oauth")
    assert name == "OAUTH_" + b"fake-oauth".hex().upper() + "_ACCESS_TOKEN"
    # Refreshed before it was written: the token in the file is valid.
    assert lines[name] == fake.issued[-1]["access_token"] and len(fake.refresh_requests) == 1


def test_ctrl_c_while_oauth_start_waits_is_one_line_and_exit_130(site):
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "workers", "oauth", "start", "sandboxAuth", "--no-browser"],
        cwd=ROOT,
        env=subprocess_env(site.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: Ctrl-C raises KeyboardInterrupt even when pytest itself runs in the background.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Waiting for the callback"):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "Interrupted."
