"""`workers serve`: the web server (gunicorn), a Celery worker and beat in one terminal; Ctrl-C stops them all.

They restart when a .py file of the project or of WORKER_MODULES changes, as `runserver` does, so edited
worker code is what the next run executes (`--noreload` or WORKERS_SERVE_RELOAD=false to keep them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from ..conf import app_settings
from ..crypto import assert_keys_can_read
from ..source import CodeWatcher
from . import add_command
from .summary import summary_lines

STOP_TIMEOUT = 15.0
# How often the watched files are stat'ed: runserver's StatReloader looks once a second too.
RELOAD_POLL = 1.0
READY_TIMEOUT = 60.0
# workers_site/celery.py creates the file this names when the worker is ready.
READY_FILE_VARIABLE = "WORKERS_SERVE_READY_FILE"


def add_arguments(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "serve",
        help="run the web server, a Celery worker and beat together (one machine)",
        description=(
            "Run the web server (gunicorn, or Django's development server with --dev), a Celery\n"
            "worker and Celery beat in this terminal, as `make run` does. Ctrl-C stops all three; if\n"
            "one of them exits, the others are stopped too. On several machines, start the processes\n"
            "separately instead (`celery -A workers_site worker`, `celery -A workers_site beat`)."
        ),
        example_lines=[
            "python manage.py workers serve",
            "python manage.py workers serve --port 8431   # set PUBLIC_URL to match",
            "python manage.py workers serve --dev --concurrency 1",
        ],
    )
    p.add_argument("--host", default="127.0.0.1", help="address the web server listens on")
    p.add_argument("--port", default="8000", help="port the web server listens on")
    p.add_argument("--concurrency", default="2", help="Celery worker processes")
    p.add_argument(
        "--web-workers",
        default="2",
        help="gunicorn worker processes (ASGI; each runs up to WORKERS_WEB_THREADS Django requests at once)",
    )
    p.add_argument(
        "--dev", action="store_true", help="Django's development server instead of gunicorn (one request at a time)"
    )
    p.add_argument(
        "--noreload",
        action="store_true",
        help="do not restart the three processes when a .py file of the project or of WORKER_MODULES changes "
        "(restarting is on by default; WORKERS_SERVE_RELOAD=false turns it off for good)",
    )
    p.set_defaults(handler=handle)


def reload_enabled(options: dict[str, Any]) -> bool:
    """Restart on code changes unless `--noreload` was given or WORKERS_SERVE_RELOAD is false."""
    return bool(app_settings.SERVE_RELOAD and not options.get("noreload"))


def web_command(python: str, host: str, port: str, *, dev: bool = False, web_workers: str = "2") -> list[str]:
    """The web server's command line: gunicorn (its asgi worker: Django and /mcp/) with the site's config, or `runserver` (Django only, no /mcp/) with --dev."""
    if dev:
        return [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]
    return [
        python,
        "-m",
        "gunicorn",
        "-c",
        "python:workers_site.gunicorn_conf",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(web_workers),
    ]


def _answers(host: str, port: str) -> bool:
    """Whether the web server answers /healthz (a wildcard bind is asked on loopback)."""
    import urllib.error
    import urllib.request

    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as answer:  # noqa: S310
            return answer.status == 200
    except urllib.error.HTTPError:
        return True  # an answer all the same (a host outside ALLOWED_HOSTS is told 400)
    except OSError:
        return False


def handle(command: Any, options: dict[str, Any]) -> None:
    # Each child refuses a wrong key too, but one clear message before starting beats three tracebacks.
    assert_keys_can_read()
    if not options["dev"]:
        # Hashed, compressed copies for WhiteNoise; unchanged files are skipped on later starts.
        call_command("collectstatic", interactive=False, verbosity=0)
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "workers_site"]
    commands = {
        "web": web_command(
            python, options["host"], options["port"], dev=options["dev"], web_workers=options["web_workers"]
        ),
        # -q: no banners (the summary says what matters); beat logs each task it sends at INFO.
        "worker": [*celery, "-q", "worker", "--loglevel", "INFO", "--concurrency", str(options["concurrency"])],
        "beat": [*celery, "-q", "beat", "--loglevel", "WARNING"],
    }
    # The worker creates this file once ready; the summary waits for it (at most READY_TIMEOUT) and the site.
    ready_file = Path(settings.RUN_DIR) / f"serve-{os.getpid()}.ready"
    ready_file.parent.mkdir(parents=True, exist_ok=True)
    ready_file.unlink(missing_ok=True)
    child_env = {**os.environ, READY_FILE_VARIABLE: str(ready_file)}
    watcher = CodeWatcher(Path(settings.BASE_DIR), app_settings.WORKER_MODULES) if reload_enabled(options) else None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    down: set[str] = set()
    failed: list[str] = []
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    def start_all() -> None:
        for name, argv in commands.items():
            # A session of its own: the terminal's Ctrl-C reaches only this process, which then
            # stops the children in order instead of all of them dying at once mid-task.
            procs[name] = subprocess.Popen(argv, start_new_session=True, env=child_env)
        down.clear()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        start_all()
        served_at = f"http://{options['host']}:{options['port']}"
        announced = False
        started = time.monotonic()
        next_look = time.monotonic() + RELOAD_POLL
        while not stopping:
            for name, proc in procs.items():
                if name in down or proc.poll() is None:
                    continue
                if watcher is None:
                    failed.append(f"{name} exited with status {proc.returncode}")
                    stopping = True
                else:
                    # A syntax error in the code being edited: wait for the fix, as runserver does.
                    down.add(name)
                    command.stderr.write(
                        f"{name} exited with status {proc.returncode}; restarting all when a .py file changes."
                    )
            worker_ready = ready_file.exists() or time.monotonic() - started > READY_TIMEOUT
            if not announced and not stopping and worker_ready and _answers(options["host"], options["port"]):
                # Last, once the site answers: the lines a newcomer needs are not lost among the servers'.
                announced = True
                for line in summary_lines(served_at):
                    command.stdout.write(command.style.SUCCESS(line))
                if watcher is not None:
                    command.stdout.write("They restart when a .py file changes (--noreload to keep them).")
                command.stdout.flush()
            if watcher is not None and not stopping and time.monotonic() >= next_look:
                changed = watcher.changed()
                if changed is not None:
                    command.stdout.write(f"Restarting: {changed} changed.")
                    command.stdout.flush()
                    _stop_all(procs)
                    if not stopping:  # a Ctrl-C while they stopped
                        start_all()
                next_look = time.monotonic() + RELOAD_POLL
            time.sleep(0.2 if watcher is not None else 0.5)
    finally:
        _stop_all(procs)
        ready_file.unlink(missing_ok=True)
    if failed:
        raise CommandError("; ".join(failed) + ": stopped the others.")
    command.stdout.write("Stopped the web server, the Celery worker and beat.")


def _stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each leader (Celery's warm shutdown), then SIGKILL to whatever is left of its session."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # Pool processes of a killed Celery worker would otherwise outlive it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
