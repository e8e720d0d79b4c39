"""The web server's PostgreSQL connection pool: where it is on, and that a process closes it whole."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from django.db import connection, connections

from connections.dbpool import close_database_connections

from .conftest import ROOT

PG = "postgres://postgres@127.0.0.1:5432/nowhere"


def _pool_setting(**env: str) -> str:
    """settings.DATABASE_POOL in a fresh process with `env` (the settings only: nothing connects)."""
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "workers_site.settings",
        "DATABASE_URL": PG,
        "FIELD_ENCRYPTION_KEY": os.environ["FIELD_ENCRYPTION_KEY"],
    }
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DATABASE_POOL)",
        ],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return answer.stdout.strip() or answer.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WORKERS_WEB_SERVER": "gunicorn"}, "True"),
        ({}, "False"),  # Celery, beat, commands: not the web server
        ({"WORKERS_WEB_SERVER": "gunicorn", "WORKERS_DATABASE_POOL": "false"}, "False"),
        ({"WORKERS_WEB_SERVER": "gunicorn", "WORKERS_MCP_IN_PROCESS": "true"}, "False"),
        ({"WORKERS_WEB_SERVER": "gunicorn", "DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "False"),
        ({"WORKERS_WEB_SERVER": "gunicorn", "CONN_MAX_AGE": "60"}, "False"),
    ],
)
def test_the_pool_is_the_web_servers_on_postgresql_unless_turned_off(env, expected):
    assert _pool_setting(**env) == expected


def test_a_pool_asked_for_beside_persistent_connections_is_refused_with_a_clear_error():
    answer = _pool_setting(WORKERS_WEB_SERVER="gunicorn", CONN_MAX_AGE="60", WORKERS_DATABASE_POOL="true")
    assert "ImproperlyConfigured" in answer and "set CONN_MAX_AGE to 0" in answer


def test_closing_from_any_thread_closes_the_pool_another_thread_opened(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's")
    options, saved_age = connection.settings_dict["OPTIONS"], connection.settings_dict["CONN_MAX_AGE"]
    connection.close()
    options["pool"], connection.settings_dict["CONN_MAX_AGE"] = {"min_size": 1, "max_size": 2, "timeout": 10}, 0
    pools = type(connections[connection.alias])._connection_pools
    try:

        def request() -> None:
            from django.db import connection as own

            with own.cursor() as cursor:
                cursor.execute("SELECT 1")
            own.close()  # back to the pool, as at the end of a request

        worker = threading.Thread(target=request)
        worker.start()
        worker.join(30)
        assert connection.alias in pools

        closing = threading.Thread(target=close_database_connections)  # as at shutdown: another thread
        closing.start()
        closing.join(30)

        assert connection.alias not in pools
    finally:
        options.pop("pool", None)
        connection.settings_dict["CONN_MAX_AGE"] = saved_age
        if connection.alias in pools:
            connection.close_pool()
