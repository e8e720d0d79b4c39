"""The deployment recipe as written: the Procfile's processes started from its own lines, checked by its health checks.

Each Procfile line runs through `sh -c`, as Procfile runners (honcho, foreman) run it, with the
variables the README's "Many machines" section exports, on SQLite and the embedded filesystem
broker, in a folder of its own and on a free port. The release steps come first (migrate, deploy,
collectstatic); then a tool runs through the broker and a worker, and a webhook through the web
server and a worker. Each health check passes while its process runs and fails once it stopped.
With LOG_FORMAT=json every log line of the three processes is a JSON object, and each run has a
start and an end line.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from .conftest import ROOT, free_port

pytestmark = pytest.mark.celery


def procfile() -> tuple[dict[str, str], dict[str, str]]:
    """({process: command}, {process: health check command}) from the Procfile."""
    processes, checks = {}, {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if match := re.fullmatch(r"([a-z]+): (.+)", line):
            processes[match[1]] = match[2]
        elif match := re.fullmatch(r"# health ([a-z]+): (.+)", line):
            checks[match[1]] = match[2]
    return processes, checks


def readme_exports() -> set[str]:
    """The variables the README's "Many machines" section tells every machine to export."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Many machines\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("export "):
            names.update(re.findall(r"([A-Z_][A-Z0-9_]*)=", line))
    return names


def wait_for(
    what: str, check: Callable[[], bool], procs: dict[str, subprocess.Popen], logs: Path, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited ({proc.returncode}):\n{(logs / f'{name}.log').read_text()[-3000:]}"
                )
        time.sleep(0.5)
    tails = "\n".join(f"--- {name}\n{(logs / f'{name}.log').read_text()[-2000:]}" for name in procs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def sh(command: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def recipe_env(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    local = {
        # The README's list, with values for one machine.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SECRET_KEY": secrets.token_urlsafe(40),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WORKER_MODULES": "examples.sandbox,tests.runner.workers_runner",
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "LOG_FORMAT": "json",
    }
    missing = readme_exports() - set(local)
    assert not missing, f"the README exports {sorted(missing)}, which this test does not set"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "WORKERS_"))}
    env.update(local)
    env.update(
        {
            # This machine only: the embedded broker's folder, static files, beat's heartbeat, the port.
            "CELERY_BROKER_DIR": str(tmp_path / "broker"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "WORKERS_BEAT_HEARTBEAT_FILE": str(tmp_path / "beat.heartbeat"),
            "PORT": str(port),
            "CELERY_WORKER_NAME": f"recipe-{os.getpid()}",
            "SANDBOX_PROVIDER": "false",
            "PYTHONUNBUFFERED": "1",
            # `gunicorn` and `celery` as the Procfile names them: this virtualenv's.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


@pytest.fixture
def started(recipe_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[dict[str, subprocess.Popen], Path]]:
    for step in ("migrate --noinput", "workers deploy", "collectstatic --noinput"):
        done = sh(f"python manage.py {step}", recipe_env, timeout=300)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    processes, _ = procfile()
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, command in processes.items():
            with (tmp_path / f"{name}.log").open("w") as log:
                procs[name] = subprocess.Popen(
                    ["sh", "-c", command],
                    cwd=ROOT,
                    env=recipe_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        yield procs, tmp_path
    finally:
        for proc in procs.values():
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the line's whole process group (sh and what it started), then wait until all of it is gone."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc.poll()  # reap sh, or the group never empties
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_the_procfile_runs_a_tool_and_a_webhook_and_passes_its_health_checks(started, recipe_env):
    procs, logs = started
    processes, checks = procfile()
    assert set(processes) == {"web", "worker", "beat"} and set(checks) == set(processes)
    base = recipe_env["PUBLIC_URL"]

    for name in ("web", "worker", "beat"):
        wait_for(
            f"the {name} health check", lambda name=name: sh(checks[name], recipe_env).returncode == 0, procs, logs
        )

    # A tool: queued by the command line, run by the worker process.
    done = sh("""python manage.py workers exec add --input '{"a": 2, "b": 3}'""", recipe_env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"sum": 5}
    # A webhook: answered by the web process, handled by the worker process.
    answer = requests.post(
        f"{base}/webhooks/runner-test/checked/", json={}, headers={"X-Token": "let-me-in"}, timeout=30
    )
    assert answer.status_code == 202, answer.text

    def webhook_handled() -> bool:
        scrape = requests.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {recipe_env['METRICS_TOKEN']}"}, timeout=30
        )
        return 'workers_runs{kind="webhook",status="succeeded"} 1.0' in scrape.text

    wait_for("the webhook's run to succeed", webhook_handled, procs, logs)

    # Every log line of the three processes is JSON; each run logged its start and its end.
    records = {}
    for name in ("web", "worker", "beat"):
        lines = [line for line in (logs / f"{name}.log").read_text().splitlines() if line.strip()]
        records[name] = []
        for line in lines:
            if name != "web" and not line.startswith("{"):
                continue  # Celery's start-up banner, printed rather than logged
            records[name].append(json.loads(line))
        assert records[name], f"no log line from {name}"
    runs = [r for r in records["worker"] if "run_id" in r]
    started_lines = [r for r in runs if r["message"].startswith(f"Run {r['run_id']} started")]
    ended = [r for r in runs if r["message"].startswith(f"Run {r['run_id']} ended")]
    assert {(r["kind"], r["worker"], r["target"]) for r in started_lines} == {
        ("tool", "runner-test", "add"),
        ("webhook", "runner-test", "checked"),
    }
    assert [(r["status"], r["duration"] >= 0) for r in ended] == [("succeeded", True)] * 2
    assert any("GET /healthz" in r["message"] for r in records["web"])  # gunicorn's access log, as JSON

    # Each health check fails once its process is gone (the beat's heartbeat left two minutes old).
    for name in ("web", "worker", "beat"):
        stop(procs[name])
        if name == "beat":
            stale = time.time() - 120
            os.utime(recipe_env["WORKERS_BEAT_HEARTBEAT_FILE"], (stale, stale))
        assert sh(checks[name], recipe_env).returncode != 0, name


def test_the_readme_shows_the_procfile_as_written():
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Many machines\n", 1)[1].split("\n## ", 1)[0]
    processes, checks = procfile()
    for name, command in processes.items():
        assert f"{name}: {command}" in section
    for name, command in checks.items():
        assert command in section, name
