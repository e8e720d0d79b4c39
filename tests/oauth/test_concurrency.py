"""One refresh per connection at a time: many threads and processes ask for an expired token at once."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from connections.models import Connection
from connections.oauth.tokens import access_token

from ..conftest import ROOT, subprocess_env
from ..oauth_helpers import connect
from .fake_provider import Reply

SCRIPT = Path(__file__).with_name("concurrent_access.py")


def expire_all() -> None:
    Connection.objects.update(expires_at=timezone.now() - timedelta(seconds=5))


class Askers:
    """Threads calling access_token(), each on its own database connection, recording the token it
    got (or the error in its place) and how many queries it made."""

    def __init__(self, worker: str = "fake", key: str = "fakeAuth", barrier: threading.Barrier | None = None) -> None:
        self.worker, self.key, self.barrier = worker, key, barrier
        self.results: list[str] = []
        self.queries: list[int] = []
        self._lock = threading.Lock()

    def ask(self) -> None:
        try:
            if self.barrier is not None:
                self.barrier.wait()
            db_connection.ensure_connection()  # connecting is not one of the queries counted
            with CaptureQueriesContext(db_connection) as captured:
                value = access_token(self.worker, self.key)
            with self._lock:
                self.queries.append(len(captured))
        except BaseException as exc:  # noqa: BLE001 (recorded, so the assertion shows what went wrong)
            value = f"error: {type(exc).__name__}: {exc}"
        finally:
            db_connection.close()
        with self._lock:
            self.results.append(value)

    def start(self, count: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.ask) for _ in range(count)]
        for thread in threads:
            thread.start()
        return threads


def ask_at_once(worker: str, key: str, count: int) -> list[str]:
    askers = Askers(worker, key, threading.Barrier(count))
    for thread in askers.start(count):
        thread.join(timeout=120)
    return askers.results


def test_sixteen_threads_one_refresh(fake, fake_connected):
    expire_all()
    fake.token_delay = 0.3  # the refresh takes a while, as over the internet: callers pile in meanwhile
    results = ask_at_once("fake", "fakeAuth", 16)
    assert len(fake.refresh_requests) == 1
    new_token = fake.issued[-1]["access_token"]
    assert results == [new_token] * 16
    conn = Connection.objects.get(pk=fake_connected.pk)
    assert conn.refresh_token == fake.issued[-1]["refresh_token"] and conn.refresh_count == 1


def test_threads_asking_while_one_of_their_process_refreshes_take_its_token_without_the_database(fake, fake_connected):
    """16 threads of a worker process cost the database one waiter, not 16 (each with its lock wait)."""
    expire_all()
    fake.token_gate = threading.Event()
    askers = Askers()
    (first,) = askers.start(1)
    assert fake.token_held.wait(60)  # the first caller is refreshing: the provider holds its answer
    others = askers.start(15)
    # None can finish before the provider answers; a moment for all of them to be asking.
    others[-1].join(timeout=1)
    assert all(thread.is_alive() for thread in others)
    fake.token_gate.set()
    for thread in [first, *others]:
        thread.join(timeout=120)
    assert len(fake.refresh_requests) == 1
    assert askers.results == [fake.issued[-1]["access_token"]] * 16
    # The refresher's queries, then the others': none, or one read of the token just stored.
    queries = askers.queries
    assert len(queries) == 16 and max(sorted(queries)[:15]) <= 1, queries


def test_threads_waiting_on_a_refresher_that_died_still_get_a_token(fake, fake_connected, monkeypatch):
    """The refreshing thread is stopped (a Celery soft time limit) before it asks: its waiters refresh."""
    from billiard.exceptions import SoftTimeLimitExceeded

    from connections.oauth import client

    expire_all()
    real_refresh = client.refresh
    asked, stopped = threading.Event(), threading.Event()

    def stopped_first(capability, refresh_token):
        if not asked.is_set():
            asked.set()
            stopped.wait(60)
            raise SoftTimeLimitExceeded()
        return real_refresh(capability, refresh_token)

    monkeypatch.setattr(client, "refresh", stopped_first)
    askers = Askers()
    (first,) = askers.start(1)
    assert asked.wait(60)
    others = askers.start(7)
    others[-1].join(timeout=1)  # a moment for all of them to be waiting on the first
    stopped.set()
    for thread in [first, *others]:
        thread.join(timeout=120)
    assert len(fake.refresh_requests) == 1
    new_token = fake.issued[-1]["access_token"]
    outcomes = sorted(r if r == new_token else r.split(":")[1].strip() for r in askers.results)
    assert outcomes == sorted([new_token] * 7 + [SoftTimeLimitExceeded.__name__]), askers.results
    conn = Connection.objects.get(pk=fake_connected.pk)
    assert conn.refresh_token == fake.issued[-1]["refresh_token"] and conn.status == Connection.Status.CONNECTED


def test_sixteen_threads_against_the_sandbox_provider(site):
    connect(site)
    expire_all()
    RefreshToken = get_refresh_token_model()
    issued_before = RefreshToken.objects.count()
    results = ask_at_once("sandbox", "sandboxAuth", 16)
    assert len(set(results)) == 1 and not results[0].startswith("error"), results[:3]
    # django-oauth-toolkit keeps rotated refresh tokens (revoked): exactly one refresh reached it.
    assert RefreshToken.objects.count() == issued_before + 1
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert get_access_token_model().objects.get().token == results[0]


def test_four_processes_of_eight_threads_one_refresh(fake, fake_connected, tmp_path):
    expire_all()
    fake.token_delay = 0.3
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "fake", "fakeAuth", "8", str(go)],
            cwd=ROOT,
            env=subprocess_env(fake.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    # Every process is set up (Django loaded, threads waiting) before any asks.
    deadline = time.monotonic() + 60
    ready = 0
    while ready < 4 and time.monotonic() < deadline:
        ready = sum(1 for i in range(4) if (tmp_path / f"ready-{procs[i].pid}").exists())
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.05)
    assert ready == 4
    go.touch()
    hashes: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        hashes.extend(json.loads(out.strip().splitlines()[-1]))
    assert len(fake.refresh_requests) == 1
    expected = hashlib.sha256(fake.issued[-1]["access_token"].encode()).hexdigest()
    assert hashes == [expected] * 32


def test_a_failing_provider_is_asked_once_not_once_per_waiter(fake, fake_connected):
    from connections.exceptions import TokenRefreshError

    expire_all()
    fake.token_delay = 0.3
    fake.script.append(Reply(status=503, body="down", content_type="text/plain"))
    results = ask_at_once("fake", "fakeAuth", 8)
    assert len(fake.refresh_requests) == 1
    assert all(r.startswith(f"error: {TokenRefreshError.__name__}") and "HTTP 503" in r for r in results), results
    # Later callers, after the failure was recorded, try again.
    assert access_token("fake", "fakeAuth") == fake.issued[-1]["access_token"]
