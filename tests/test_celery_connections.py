"""A Celery pool process keeps its database connection across tasks, as long as its max age allows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from connections.tasks import run_tool
from workers_site.celery import KeptConnections, app


@pytest.fixture
def max_age(transactional_db: None) -> Iterator[None]:
    saved = connection.settings_dict["CONN_MAX_AGE"]
    yield
    connection.settings_dict["CONN_MAX_AGE"] = saved
    connection.close()


def _connect(seconds: int) -> object:
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = seconds
    connection.ensure_connection()
    return connection.connection


def test_the_connection_outlives_a_task_within_its_max_age(max_age):
    fixup = KeptConnections(app)
    kept = _connect(60)

    fixup.on_task_postrun(sender=run_tool)
    fixup.on_task_prerun(sender=run_tool)

    assert connection.connection is kept  # the next task needs no new connection


def test_the_connection_is_closed_after_a_task_without_a_max_age(max_age):
    fixup = KeptConnections(app)
    _connect(0)

    fixup.on_task_postrun(sender=run_tool)

    assert connection.connection is None
