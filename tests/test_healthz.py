"""/healthz: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from django.db import OperationalError

from .conftest import ROOT, database_url_for_subprocess, subprocess_env


@pytest.mark.django_db
def test_healthz_answers_200_when_database_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


@pytest.mark.django_db
def test_healthz_answers_503_when_database_is_down(client, monkeypatch):
    from django.db.backends.base.base import BaseDatabaseWrapper

    def down(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


SERVE = """
from wsgiref.simple_server import WSGIRequestHandler, make_server
from workers_site.wsgi import application
WSGIRequestHandler.log_message = lambda *args: None
server = make_server("127.0.0.1", 0, application)
print(server.server_port, flush=True)
server.serve_forever()
"""


def _healthz_over_http(database_url: str) -> int:
    """Serve workers_site.wsgi:application in a real process on `database_url`; GET /healthz over HTTP."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        cwd=ROOT,
        env=subprocess_env("http://127.0.0.1", DATABASE_URL=database_url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# No test transaction: on SQLite its write lock made the served process wait out its 60 s busy timeout.
@pytest.mark.django_db(transaction=True)
def test_healthz_over_http_follows_the_real_database(tmp_path):
    assert _healthz_over_http(database_url_for_subprocess()) == 200
    # A database that cannot be opened: the site still starts, and says it is unavailable.
    assert _healthz_over_http(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}") == 503
