"""The CLI's manners at the edges, met as a user meets them: `manage.py workers ...` in a real process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from connections.models import Run, Secret

from ..conftest import ROOT, private_broker, subprocess_env
from .conftest import PUBLIC_URL, Result

# The bundled sandbox example and the runner tests' worker (its `add` tool prints).
MODULES = "examples.sandbox,tests.runner.workers_runner"


@pytest.fixture
def deployed(manage: Callable[..., Result]) -> Callable[..., Result]:
    """`manage` with both workers deployed, and every later command seeing the same modules."""

    def run(*args: str, **env: str) -> Result:
        return manage(*args, **{"WORKER_MODULES": MODULES, **env})

    result = run("workers", "deploy")
    assert result.returncode == 0, result.stderr
    return run


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_ctrl_c_while_exec_waits_for_a_worker_is_one_line_and_exit_130(deployed, tmp_path):
    # A broker of its own, which no Celery worker reads: the run stays queued and exec waits.
    env = subprocess_env(PUBLIC_URL, WORKER_MODULES=MODULES, **private_broker(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "workers", "exec", "add", "--input", '{"a": 1, "b": 2}'],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: Ctrl-C raises KeyboardInterrupt even when pytest itself runs in the background.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Ctrl-C once the person sees that exec waits: its first line says so.
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(proc.stderr.readline()), daemon=True)
        reader.start()
        reader.join(timeout=60)
        assert first and first[0].startswith("Queued as run #"), first
        assert Run.objects.filter(target="add", trigger="cli", status=Run.Status.QUEUED).exists()
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = first[0] + rest
    assert proc.returncode == 130, err
    # What it waited for, then one line on the interrupt, no traceback; the run stays queued.
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 2, err
    assert "Interrupted; run #" in lines[1] and "workers runs cancel" in lines[1]
    assert out == ""


def test_exec_on_the_celery_path_without_a_worker_says_only_why_it_stopped(deployed, tmp_path):
    # No kombu "No hostname was supplied" warning (or any other library line) around the reason.
    result = deployed(
        "workers",
        "exec",
        "add",
        "--input",
        '{"a": 1, "b": 2}',
        "--timeout",
        "1",
        **private_broker(tmp_path),
    )
    assert result.returncode == 1
    # Only what it waited for, then why it stopped: no library line around them.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].startswith("Queued as run #")
    assert lines[1].startswith("CommandError: Run #") and "is still queued after 1 s" in lines[1]
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["exec", "add"], ["sync", "run", "itemsSync"], ["oauth", "start", "sandboxAuth"]])
@pytest.mark.parametrize("value", ["-1", "0", "soon"])
def test_a_timeout_that_is_not_positive_is_refused_in_one_line(manage, command, value):
    result = manage("workers", *command, "--timeout", value)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "--timeout" in line and "positive number of seconds" in line and value in line
    assert result.stdout == ""
    assert not Run.objects.exists()


def test_a_database_that_takes_the_connection_and_never_answers_is_a_one_line_error(manage, frozen_database):
    """A frozen PostgreSQL (here a real one stopped with SIGSTOP), or one behind a host that drops
    packets: the connection is taken, nothing is ever answered. libpq waited for ever."""
    result = manage("workers", "runs", DATABASE_URL=frozen_database, DATABASE_CONNECT_TIMEOUT="2")

    result.assert_failed_with("Database error: connection timeout expired")


def test_exec_local_keeps_the_tools_prints_off_stdout(deployed):
    result = deployed("workers", "exec", "add", "--local", "--input", '{"a": 2, "b": 40}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sum": 42}  # what `| jq` reads
    assert "printed by the tool" in result.stderr  # still shown to the person who ran it


def test_env_set_of_a_name_no_worker_refers_to_warns_and_sets(deployed):
    result = deployed("workers", "env", "set", "--worker", "sandbox", "SANDBOX_CLIENT_IDD=abc")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Added SANDBOX_CLIENT_IDD for worker sandbox.\n"
    warning = one_line(result.stderr)
    assert "SANDBOX_CLIENT_IDD" in warning and "does not refer to" in warning
    assert "SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET" in warning  # the names it knows
    assert Secret.objects.filter(worker__slug="sandbox", name="SANDBOX_CLIENT_IDD").exists()

    # A name the worker's code reads inside a tool (`worker.env("HOOK_SECRET")`) is no stranger.
    known = deployed("workers", "env", "set", "HOOK_SECRET=x")
    assert known.returncode == 0, known.stderr
    assert known.stdout == "Added HOOK_SECRET for worker runner-test.\n" and known.stderr == ""


def test_a_tool_under_the_wrong_worker_names_the_worker_that_has_it(deployed):
    result = deployed("workers", "exec", "add", "--worker", "sandbox", "--local")
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "sandbox has no tool 'add'" in line and "--worker runner-test" in line
    assert "deploy" not in line

    sync = deployed("workers", "sync", "run", "itemsSync", "--worker", "runner-test", "--local")
    assert sync.returncode != 0
    line = one_line(sync.stderr)
    assert "runner-test has no sync 'itemsSync'" in line and "--worker sandbox" in line
    assert "deploy" not in line


def test_a_never_connected_capability_says_where_to_connect_it(deployed):
    result = deployed("workers", "exec", "getMe", "--local")
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "sandboxAuth is not connected yet: connect it in the admin at " in line, line
    assert f"{PUBLIC_URL}/admin/connections/oauthcapability/" in line
    assert "re-authorization" not in line
