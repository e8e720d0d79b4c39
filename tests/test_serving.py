"""The production web server as `workers serve` starts it: gunicorn with WhiteNoise, over real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test.utils import override_settings

from connections.cli.serve import web_command

from .conftest import ROOT, free_port, subprocess_env

MODULE = "tests.serving_worker"


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def gunicorn(transactional_db: None, tmp_path: Path) -> Iterator[Server]:
    """gunicorn started with the command `workers serve` uses, after `collectstatic` as `workers serve` runs it."""
    from connections import registry
    from connections.deploy import deploy

    with override_settings(WORKER_MODULES=[MODULE]):
        registry.clear_cache()
        deploy()
    registry.clear_cache()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = subprocess_env(url, WORKER_MODULES=MODULE, STATIC_ROOT=str(tmp_path / "static"), DEBUG="false")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    log = tmp_path / "gunicorn.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            web_command(sys.executable, "127.0.0.1", str(port)),
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(proc, url, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, server.output()
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(f"gunicorn did not answer:\n{server.output()}")
    yield server
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_admin_css_is_served_hashed_compressed_and_cached(gunicorn: Server) -> None:
    page = requests.get(f"{gunicorn.url}/admin/login/", timeout=10)
    assert page.status_code == 200
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    assert css, "the admin links no hashed stylesheet"
    answer = requests.get(gunicorn.url + css.group(1), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Encoding"] == "gzip"
    assert "immutable" in answer.headers["Cache-Control"]
    assert "body" in answer.text  # requests decompressed real CSS


def test_a_burst_of_100_webhooks_is_answered_without_a_reset(gunicorn: Server) -> None:
    start = threading.Barrier(100)

    def post(i: int) -> int:
        start.wait()  # all 100 connect at once, as a burst does
        return requests.post(
            f"{gunicorn.url}/webhooks/serving-test/slow/", json={"n": i}, headers={"X-Delay": "0.05"}, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(post, range(100)))
    assert statuses == [202] * 100


def test_sigterm_finishes_the_request_in_flight(gunicorn: Server) -> None:
    answers: list[int] = []

    def slow() -> None:
        answers.append(
            requests.post(
                f"{gunicorn.url}/webhooks/serving-test/slow/", json={}, headers={"X-Delay": "3"}, timeout=30
            ).status_code
        )

    request = threading.Thread(target=slow)
    request.start()
    time.sleep(1)  # the request is inside its 3 s check
    gunicorn.proc.send_signal(signal.SIGTERM)
    request.join(timeout=30)
    assert answers == [202]
    assert gunicorn.proc.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{gunicorn.url}/healthz", timeout=5)


def test_access_log_has_no_query_string(gunicorn: Server) -> None:
    requests.get(f"{gunicorn.url}/oauth/callback/?code=the-secret-code&state=the-state", timeout=10)
    time.sleep(0.5)
    log = gunicorn.output()
    assert "/oauth/callback/" in log
    assert "the-secret-code" not in log and "the-state" not in log


def test_a_chunked_body_is_read_whole(gunicorn: Server) -> None:
    from connections.models import WebhookEvent

    body = b'{"items": [' + b",".join(b'"item-%d"' % i for i in range(2000)) + b"]}"

    def chunks():  # no Content-Length: requests sends Transfer-Encoding: chunked
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    answer = requests.post(f"{gunicorn.url}/webhooks/serving-test/slow/", data=chunks(), timeout=30)
    assert answer.status_code == 202, answer.text
    event = WebhookEvent.objects.get(pk=answer.json()["event"])
    assert bytes(event.body) == body


def test_a_broken_chunked_body_is_a_400_not_a_500(gunicorn: Server) -> None:
    import socket
    from urllib.parse import urlsplit

    host, port = urlsplit(gunicorn.url).hostname, urlsplit(gunicorn.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/serving-test/slow/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\nZZ\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert "Traceback" not in gunicorn.output()


def _sessions_opened() -> int:
    """Connections ever opened to this database, once the counts of ended ones are in (PostgreSQL 14+)."""
    last = -1
    for _ in range(20):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            now = int(cursor.fetchone()[0])
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def test_requests_take_pooled_database_connections_on_postgresql(gunicorn: Server) -> None:
    """40 requests, 4 at a time, open a few PostgreSQL connections, not one each: a new connection
    cost the server more than a request's own work."""
    if connection.vendor != "postgresql":
        pytest.skip("the web server's connection pool is PostgreSQL's")
    before = _sessions_opened()

    with ThreadPoolExecutor(4) as senders:
        codes = list(senders.map(lambda _: requests.get(f"{gunicorn.url}/healthz", timeout=10).status_code, range(40)))

    assert codes == [200] * 40
    # 2 processes, at most 4 requests at a time between them.
    assert _sessions_opened() - before <= 8
