"""A cluster for the many-machines suite: a private PostgreSQL and Redis, a web server, workers on two hosts.

Nothing here touches the machine's shared PostgreSQL, Redis or RabbitMQ server beyond a vhost of
its own on RabbitMQ: the tests stop and restart what they start, in temporary folders, on free ports.
The suite runs only when selected (`pytest -m multihost tests/multihost`): it takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import (  # noqa: F401  (PrivateRedis and wait_until: the tests here import them from this module)
    ADMIN_PASSWORD,
    ROOT,
    CeleryWorker,
    PrivatePostgres,
    PrivateRedis,
    csrf_from,
    start_celery_worker,
    wait_until,
)
from tests.oauth.fake_provider import FakeProvider, running

from ..conftest import free_port

MODULE = "tests.multihost.workers_multihost"
FINISHED = ("succeeded", "failed", "skipped", "cancelled")


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "multihost" not in (request.config.option.markexpr or ""):
        pytest.skip("the many-machines suite runs with `-m multihost` (see .ci/run)")


# --- servers of our own ------------------------------------------------------------------


class RabbitVhost:
    """A vhost of its own on the machine's RabbitMQ (which the tests never stop), deleted afterwards."""

    def __init__(self) -> None:
        if shutil.which("rabbitmqctl") is None:
            pytest.skip("RabbitMQ not installed")
        self.name = f"multihost-{uuid.uuid4().hex[:12]}"
        for command in (["add_vhost", self.name], ["set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"]):
            done = subprocess.run(["rabbitmqctl", *command], capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                pytest.skip(f"RabbitMQ not usable: {done.stderr.strip()[:200]}")
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"

    def delete(self) -> None:
        subprocess.run(["rabbitmqctl", "delete_vhost", self.name], capture_output=True, timeout=60)


# --- the cluster -------------------------------------------------------------------------


class Cluster:
    """The shared state of the machines: database, provider, web server; workers join per test."""

    def __init__(self, folder: Path, pg: PrivatePostgres, provider: FakeProvider) -> None:
        self.folder = folder
        self.pg = pg
        self.provider = provider
        self.ledger = folder / "ledger.jsonl"
        self.broker_url = ""
        self.web_url = f"http://127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen[str]] = []
        self.workers: list[CeleryWorker] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("CELERY_BROKER_DIR", None)
        env.update(
            DATABASE_URL=self.pg.url,
            CELERY_BROKER_URL=self.broker_url or "filesystem://",
            WORKERS_PACER_REDIS_URL="",
            WORKER_MODULES=MODULE,
            MULTIHOST_PROVIDER_URL=self.provider.url,
            MULTIHOST_LEDGER=str(self.ledger),
            PUBLIC_URL=self.web_url,
            DJANGO_SETTINGS_MODULE="workers_site.settings",
            PYTHONUNBUFFERED="1",
            SANDBOX_PROVIDER="false",
        )
        env.update(extra)
        return env

    def run(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env(**env), capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    def driver(self, *args: str) -> Any:
        return json.loads(self.run("-m", "tests.multihost.driver", *args).stdout.strip().splitlines()[-1])

    def start_web(self) -> None:
        port = self.web_url.rsplit(":", 1)[1]
        log = (self.folder / "web.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(proc)
        wait_until(lambda: requests.get(f"{self.web_url}/healthz", timeout=2).ok, 60, "the web server")

    def start_worker(self, node: str, **env: str) -> CeleryWorker:
        name = node.replace("@", "-")
        worker = start_celery_worker(
            self.web_url,
            self.folder / f"{name}-{len(self.workers)}.log",
            node=node,
            **self.env(MULTIHOST_NODE=node, **env),
        )
        self.workers.append(worker)
        return worker

    def start_beat(self, **env: str) -> None:
        log = (self.folder / "beat.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers_site", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(proc)

    def stop_processes(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()
        for proc in self.processes[1:]:  # the web server (first) stays for the module
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        del self.processes[1:]

    # --- what happened ---

    def events(self, event: str) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        lines = [json.loads(line) for line in self.ledger.read_text().splitlines() if line]
        return [line for line in lines if line["event"] == event]

    def done_per_run(self) -> Counter[int]:
        return Counter(line["run"] for line in self.events("done"))

    def runs(self, ids: list[int]) -> dict[int, tuple[str, int, str]]:
        rows = self.pg.sql("SELECT id, status, attempts, owner FROM connections_run WHERE id = ANY(%s)", ids)
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def wait_finished(self, ids: list[int], timeout: float) -> dict[int, tuple[str, int, str]]:
        def finished() -> Any:
            runs = self.runs(ids)
            return runs if len(runs) == len(ids) and all(r[0] in FINISHED for r in runs.values()) else None

        try:
            return wait_until(finished, timeout, f"{len(ids)} runs to finish", every=0.5)
        except AssertionError:
            statuses = Counter(r[0] for r in self.runs(ids).values())
            raise AssertionError(f"runs not finished after {timeout:.0f} s: {dict(statuses)}\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.output()[-3000:]}" for w in self.workers)

    def admin_session(self) -> requests.Session:
        session = requests.Session()
        page = session.get(f"{self.web_url}/admin/login/", timeout=10)
        answer = session.post(
            f"{self.web_url}/admin/login/",
            data={
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "csrfmiddlewaretoken": csrf_from(page.text),
                "next": "/admin/",
            },
            timeout=10,
        )
        assert answer.ok and "/admin/login/" not in answer.url, "admin login failed"
        return session


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if "multihost" not in (request.config.option.markexpr or ""):
        pytest.skip("the many-machines suite runs with `-m multihost` (see .ci/run)")
    folder = Path(tempfile.mkdtemp(prefix="multihost-"))
    pg = PrivatePostgres(folder / "pg")
    try:
        with running(FakeProvider(expires_in=3600)) as provider:
            cluster = Cluster(folder, pg, provider)
            cluster.run("manage.py", "migrate", "--noinput", "-v0")
            cluster.driver("setup", "admin", ADMIN_PASSWORD)
            cluster.start_web()
            yield cluster
            cluster.stop_processes()
            for proc in cluster.processes:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        try:
            pg.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fresh(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with no runs, an empty ledger, a provider with no history, and no workers left running."""
    cluster.ledger.unlink(missing_ok=True)
    provider = cluster.provider
    with provider.lock:
        provider.token_requests.clear()
        provider.issued.clear()
        provider.revoked_refresh_tokens.clear()
        provider.script.clear()
        provider.down = None
    yield cluster
    cluster.stop_processes()
