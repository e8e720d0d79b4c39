"""No code, state, token or secret in the log lines of the web server or of a management command."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from connections.secrets import set_secrets

from .conftest import ROOT, free_port, subprocess_env


def test_runserver_access_log_shows_no_code_or_state(site, tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "runserver.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=subprocess_env(url),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"runserver did not answer:\n{log.read_text()}"
            time.sleep(0.3)
        code, state = f"code-{secrets.token_hex(12)}", f"state-{secrets.token_hex(12)}"
        answer = requests.get(f"{url}/oauth/callback/", params={"code": code, "state": state}, timeout=20)
        assert answer.status_code == 400  # an unknown state: refused, and the request logged
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert "/oauth/callback/?code=" in text  # the access log line is there...
    assert code not in text and state not in text  # ...without the values


@pytest.mark.django_db(transaction=True)
def test_a_management_command_that_logs_a_stored_secret_prints_it_blanked(tmp_path: Path):
    from connections.deploy import deploy

    deploy()
    value = f"canary-{secrets.token_hex(16)}"
    set_secrets("github", {"GITHUB_CLIENT_SECRET": value})
    script = (
        "import logging; from connections.secrets import get_secret; "
        "logging.getLogger('someone.else').warning('the secret reads %s today', "
        "get_secret('github', 'GITHUB_CLIENT_SECRET'))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=subprocess_env("http://127.0.0.1:8000"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "the secret reads [redacted] today" in output
    assert value not in output


def test_values_gathered_for_a_run_stop_at_their_limit_and_say_so(monkeypatch):
    from connections import logging as redaction

    monkeypatch.setattr(redaction, "COLLECT_LIMIT", 3)
    with redaction.collecting() as handed:
        redaction.remember("first-value", "second-value")
        assert handed == {"first-value", "second-value"} and not handed.overflowed
        redaction.remember("third-value", "fourth-value")  # a web process's other work, say

    assert handed.overflowed and "fourth-value" not in handed
    redaction.remember("after-the-block")
    assert "after-the-block" not in handed
