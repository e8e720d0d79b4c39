"""Deploy does not move a connected capability to other endpoints without a word.

A PUBLIC_URL that differs from the one the sandbox capability was connected under (a shell that
forgot `make run PORT=...`) changes its site-relative endpoints: deploy warns on stderr, one line
per endpoint, and changes them only with --yes or a "y" on a terminal. Without a terminal and
without --yes it refuses, changes nothing and exits non-zero.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from connections.models import Connection, OAuthCapability

from ..conftest import ROOT, subprocess_env

FIRST = "http://127.0.0.1:8431"
OTHER = "http://127.0.0.1:8000"


@pytest.fixture
def connected(manage) -> OAuthCapability:
    """The sandbox capability deployed under FIRST, with a connection (its tokens do not matter here)."""
    done = manage("workers", "deploy", WORKER_MODULES="examples.sandbox", PUBLIC_URL=FIRST)
    assert done.returncode == 0, done.stderr
    Connection.objects.filter(capability__key="sandboxAuth").update(status=Connection.Status.CONNECTED)
    return OAuthCapability.objects.get(key="sandboxAuth")


def endpoints() -> tuple[str, str, str]:
    cap = OAuthCapability.objects.get(key="sandboxAuth")
    return cap.authorization_endpoint, cap.token_endpoint, cap.revocation_endpoint


def test_without_a_terminal_deploy_refuses_and_changes_nothing(manage, connected):
    before = endpoints()
    done = manage("workers", "deploy", WORKER_MODULES="examples.sandbox", PUBLIC_URL=OTHER)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[:3] == [
        f"Warning: sandbox:sandboxAuth is connected: deploy changes its authorization endpoint from "
        f"{FIRST}/sandbox/o/authorize/ to {OTHER}/sandbox/o/authorize/",
        f"Warning: sandbox:sandboxAuth is connected: deploy changes its token endpoint from "
        f"{FIRST}/sandbox/o/token/ to {OTHER}/sandbox/o/token/",
        f"Warning: sandbox:sandboxAuth is connected: deploy changes its revocation endpoint from "
        f"{FIRST}/sandbox/o/revoke_token/ to {OTHER}/sandbox/o/revoke_token/",
    ]
    assert lines[3].startswith("CommandError: Deploy refused: it would change 3 endpoint(s)"), lines
    assert "--yes" in lines[3] and len(lines) == 4
    assert "Traceback" not in done.stderr
    assert endpoints() == before


def test_with_yes_deploy_warns_and_changes_them(manage, connected):
    done = manage("workers", "deploy", "--yes", WORKER_MODULES="examples.sandbox", PUBLIC_URL=OTHER)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Warning: sandbox:sandboxAuth is connected") == 3
    assert "~ OAuth capability sandbox:sandboxAuth: authorization_endpoint" in done.stdout
    assert endpoints() == (
        f"{OTHER}/sandbox/o/authorize/",
        f"{OTHER}/sandbox/o/token/",
        f"{OTHER}/sandbox/o/revoke_token/",
    )


def test_a_capability_never_connected_follows_the_url_without_a_word(manage):
    assert manage("workers", "deploy", WORKER_MODULES="examples.sandbox", PUBLIC_URL=FIRST).returncode == 0
    done = manage("workers", "deploy", WORKER_MODULES="examples.sandbox", PUBLIC_URL=OTHER)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
    assert endpoints()[1] == f"{OTHER}/sandbox/o/token/"


def deploy_on_a_terminal(answer: bytes) -> tuple[int, str]:
    """`workers deploy` with a terminal for stdin and stderr (a pty); types `answer` at its question."""
    env = subprocess_env("https://workers.example.test", WORKER_MODULES="examples.sandbox", PUBLIC_URL=OTHER)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "workers", "deploy"],
        cwd=ROOT,
        env=env,
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=child,
    )
    os.close(child)
    seen = b""
    while b"[y/N]" not in seen:
        chunk = os.read(main, 4096)
        assert chunk, seen
        seen += chunk
    os.write(main, answer + b"\n")
    proc.stdout.read()
    code = proc.wait(timeout=60)
    try:
        while chunk := os.read(main, 4096):
            seen += chunk
    except OSError:  # the terminal is gone once the process ended
        pass
    os.close(main)
    return code, seen.decode(errors="replace")


@pytest.mark.parametrize(("answer", "changed"), [(b"y", True), (b"n", False)])
def test_on_a_terminal_deploy_asks(connected, answer, changed):
    code, terminal = deploy_on_a_terminal(answer)
    assert terminal.count("Warning: sandbox:sandboxAuth is connected") == 3
    assert (code == 0) is changed, terminal
    assert (endpoints()[1] == f"{OTHER}/sandbox/o/token/") is changed
