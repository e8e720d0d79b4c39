"""`workers serve` as `make run` starts it: its web server, Celery worker and beat restart when worker code changes.

The site runs in a folder of its own (SQLite file, embedded broker, beat's heartbeat) on a free port, with a
worker module written into that folder for the test; `workers exec` runs its tool through the broker and
the served Celery worker, before and after the module is edited on disk.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from ..conftest import ROOT, free_port
from .conftest import write_versioned_worker

pytestmark = pytest.mark.celery

WORKER_MODULE = "reload_worker"


def write_worker(folder: Path, version: int) -> Path:
    return write_versioned_worker(folder, WORKER_MODULE, "reload-test", version)


def children(pid: int) -> dict[int, str]:
    """{pid: command line} of the processes whose parent is `pid`, from /proc."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        # The command name in parentheses may hold spaces: the parent pid is the 2nd field after it.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise AssertionError(f"workers serve exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


@pytest.fixture
def site_env(tmp_path: Path) -> dict[str, str]:
    code = tmp_path / "code"
    code.mkdir()
    write_worker(code, 1)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "WORKERS_"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_BROKER_DIR": str(tmp_path / "broker"),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "WORKER_MODULES": WORKER_MODULE,
            "PYTHONPATH": str(code),
            "WORKERS_BEAT_HEARTBEAT_FILE": str(tmp_path / "beat.heartbeat"),
            "SANDBOX_PROVIDER": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for step in (["migrate", "--noinput"], ["workers", "deploy"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *step], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    return env


@pytest.fixture
def serve(site_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "workers", "serve", "--dev", "--port", str(port), "--concurrency", "1"],
            cwd=ROOT,
            env={**site_env, "PUBLIC_URL": f"http://127.0.0.1:{port}"},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # serve stops its children, then exits
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def exec_tool(env: dict[str, str]) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "manage.py", "workers", "exec", "codeVersion", "--timeout", "120"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), done.stderr


def test_an_edited_worker_module_restarts_the_processes_and_the_next_run_executes_the_new_code(
    serve: tuple[subprocess.Popen, Path], site_env: dict[str, str], tmp_path: Path
) -> None:
    proc, log = serve
    wait_for("the Celery worker", lambda: "ready." in log.read_text(), proc, log)
    wait_for("three children", lambda: len(children(proc.pid)) == 3, proc, log)
    before = children(proc.pid)
    # The served worker imports the module at its first run: this is the code it keeps in memory.
    assert exec_tool(site_env)[0] == {"version": 1}

    edited = write_worker(tmp_path / "code", 2)

    wait_for("the restart", lambda: f"Restarting: {edited} changed." in log.read_text(), proc, log)
    wait_for("the Celery worker again", lambda: log.read_text().count("ready.") >= 2, proc, log)
    after = children(proc.pid)
    assert len(after) == 3, after
    assert not set(before) & set(after), (before, after)  # web server, Celery worker and beat: new processes
    result, warnings = exec_tool(site_env)
    assert result == {"version": 2}
    # Served, not yet deployed: the run says the deploy is behind this machine's files.
    assert "run `workers deploy` with this code" in warnings, warnings


def test_noreload_and_the_setting_turn_restarting_off(settings) -> None:
    from connections.cli.serve import reload_enabled

    assert reload_enabled({"noreload": False})
    assert not reload_enabled({"noreload": True})
    settings.WORKERS_SERVE_RELOAD = False
    assert not reload_enabled({"noreload": False})


def test_serve_help_says_how_to_turn_restarting_off() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "workers", "serve", "--help"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "workers_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--noreload" in done.stdout and "WORKERS_SERVE_RELOAD=false" in done.stdout
