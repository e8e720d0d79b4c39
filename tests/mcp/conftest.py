"""The MCP server as users meet it: the ASGI site under gunicorn as `workers serve` starts it, and its SDK client."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from connections.cli.serve import web_command
from tests.conftest import ROOT, TEST_WORKER_MODULES, subprocess_env
from tests.runner.conftest import RunnerSite, runner_site  # noqa: F401  (the fixture, for these tests)

from ..conftest import free_port


class McpServer:
    def __init__(self, proc: subprocess.Popen[str], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    @property
    def endpoint(self) -> str:
        return f"{self.url}/mcp/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_web(site_url: str, log: Path, **env: str) -> McpServer:
    """gunicorn with the command line `workers serve` uses, on the test database, waited for until it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    modules = ",".join([*settings.WORKER_MODULES, *TEST_WORKER_MODULES])
    handle = log.open("w")
    proc = subprocess.Popen(
        web_command(sys.executable, "127.0.0.1", str(port), web_workers="2"),
        cwd=ROOT,
        env=subprocess_env(site_url, WORKER_MODULES=modules, **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = McpServer(proc, url, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the web server exited:\n{server.output()[-3000:]}")
        time.sleep(0.2)
    stop_web(server)
    raise RuntimeError(f"the web server did not answer:\n{server.output()[-3000:]}")


def stop_web(server: McpServer) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="session")
def mcp_server(
    site_url: str, django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[McpServer]:
    """One web server for the session: it keeps no state between requests but what the database holds."""
    with django_db_blocker.unblock():
        server = start_web(site_url, tmp_path_factory.mktemp("web") / "web.log")
    yield server
    stop_web(server)


def create_key(site: RunnerSite, name: str, *options: str) -> str:
    """`workers mcp keys create` as a person types it; the key is the one line on stdout."""
    done = site.manage("workers", "mcp", "keys", "create", name, *options)
    assert done.returncode == 0, done.stderr
    assert "shown once" in done.stderr
    return done.stdout.strip()
