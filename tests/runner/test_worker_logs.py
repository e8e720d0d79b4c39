"""The Celery worker's own log never shows a secret or a token that worker code logged, whatever the words around it."""

from __future__ import annotations

import secrets
from io import StringIO

import pytest
from django.core.management import call_command

from connections.models import Connection, Run
from tests.oauth_helpers import connect

from .conftest import HOOK_SECRET, wait_until

pytestmark = pytest.mark.celery


def test_worker_log_blanks_secret_and_token_values_logged_in_free_text(runner_site, celery_worker):
    connect(runner_site)
    token = Connection.objects.get(capability__key="sandboxAuth").access_token
    assert token

    call_command("workers", "exec", "chatty", "--timeout", "120", stdout=StringIO(), stderr=StringIO())

    run = Run.objects.get(target="chatty")
    assert run.status == "succeeded"
    # The run's stored log was blanked already...
    assert "chatty says the secret is [redacted]" in run.log
    assert token not in run.log and HOOK_SECRET not in run.log

    # ...and so is the worker process's own log: the lines are there, the values are not.
    def written() -> str:
        text = celery_worker.output()
        return text if "chatty caught a failure" in text and "RuntimeError: chatty failed" in text else ""

    log = wait_until(written, timeout=30, what="the tool's lines in the worker log")
    assert "chatty says the secret is" in log
    assert HOOK_SECRET not in log
    assert token not in log


def test_exec_local_blanks_a_pulled_token_in_its_own_output(runner_site):
    from connections.sdk.worker import oauth_env_name

    pulled = f"pulled-{secrets.token_hex(16)}"
    done = runner_site.manage("workers", "exec", "chatty", "--local", **{oauth_env_name("sandbox-oauth"): pulled})

    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "chatty says the secret is [redacted] and the token is [redacted]" in output
    assert pulled not in output and HOOK_SECRET not in output
