"""What queueing and executing a run costs the database, and the guarantees those savings keep.

Queueing reuses the tool row this process read before, only through an INSERT that checks the
row is still the deployed one; a worker records a run without pinging its kept connection first,
and reconnects when the server dropped it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from connections.exceptions import InvalidToolInputError, WorkerNotFound
from connections.models import Run, Tool
from connections.runner import start_tool
from connections.runner.execute import perform
from connections.tasks import run_tool
from tests.conftest import TEST_WORKER_MODULES


@pytest.fixture
def deployed(transactional_db: None) -> Iterator[None]:
    from connections import registry
    from connections.deploy import deploy

    with override_settings(WORKER_MODULES=[*settings.WORKER_MODULES, *TEST_WORKER_MODULES]):
        registry.clear_cache()
        deploy()
        yield


@pytest.fixture
def kept_connection(deployed: None) -> Iterator[None]:
    """This thread's connection kept across tasks, as a Celery pool process keeps it."""
    saved = connection.settings_dict["CONN_MAX_AGE"]
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 60
    yield
    connection.settings_dict["CONN_MAX_AGE"] = saved
    connection.close()


def _queue(data: Any, key: str = "add") -> Run:
    return start_tool("runner-test", key, data, trigger="test", send=False)


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"].lstrip("(").split()[0] for query in queries.captured_queries]


def test_queueing_a_run_of_a_tool_queued_before_is_one_insert(deployed):
    _queue({"a": 1, "b": 2})

    with CaptureQueriesContext(connection) as queries:
        run = _queue({"a": 3, "b": 4})

    assert _statements(queries) == ["INSERT"]
    stored = Run.objects.select_related("tool").get(pk=run.pk)
    assert (stored.status, stored.input, stored.tool.key, stored.worker.slug) == (
        "queued",
        {"a": 3, "b": 4},
        "add",
        "runner-test",
    )


def test_a_tool_deactivated_since_its_last_run_was_queued_is_refused_at_once(deployed):
    _queue({"a": 1, "b": 2})
    Tool.objects.filter(worker__slug="runner-test", key="add").update(is_active=False)  # another process

    with pytest.raises(WorkerNotFound, match="No active tool 'add'"):
        _queue({"a": 1, "b": 2})
    assert Run.objects.count() == 1


def test_a_schema_deployed_since_is_the_one_the_input_is_checked_against(deployed):
    _queue({"a": 1, "b": 2})
    tool = Tool.objects.get(worker__slug="runner-test", key="add")
    required = {**tool.input_schema, "required": ["a", "b", "note"]}
    Tool.objects.filter(pk=tool.pk).update(input_schema=required)

    with pytest.raises(InvalidToolInputError, match='field "note" is required'):
        _queue({"a": 1, "b": 2})

    # The other way: refused by the schema read before, accepted by the one deployed now.
    Tool.objects.filter(pk=tool.pk).update(input_schema={**tool.input_schema, "required": ["a"]})
    assert _queue({"a": 1}).input == {"a": 1}
    assert Run.objects.count() == 2


def test_a_worker_records_a_run_in_claim_and_finish_with_no_ping(kept_connection):
    run_tool.apply(args=[_queue({"a": 0, "b": 0}).pk])  # the connection is open and kept
    run = _queue({"a": 1, "b": 2})

    with CaptureQueriesContext(connection) as queries:
        assert run_tool.apply(args=[run.pk]).get() == "succeeded"

    # PostgreSQL claims and reads the run, its worker's secrets and tokens in one statement (UPDATE
    # ... RETURNING in a WITH); elsewhere the read follows the UPDATE. No read after the code.
    claim = ["WITH"] if connection.vendor == "postgresql" else ["UPDATE", "SELECT"]
    assert _statements(queries) == [*claim, "UPDATE"]


def test_a_secret_set_while_the_run_ran_and_read_by_its_code_is_blanked_in_its_result(deployed):
    """The claim reads the worker's secrets before the code runs; one set meanwhile (from another
    process) that the code then reads is blanked all the same."""
    from encrypted_model_fields.fields import encrypt_str

    from connections.models import Secret, Worker
    from connections.secrets import get_secret

    value = "set-while-it-ran-4f9a2c"
    run = _queue({"a": 1, "b": 2})

    def body(run: Run, context: Any) -> dict[str, str]:
        # As `workers env set` in another process stores it: a ciphertext this process never saw.
        worker = Worker.objects.get(slug="runner-test")
        stamp = connection.ops.adapt_datetimefield_value(run.queued_at)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Secret._meta.db_table} (worker_id, name, value, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                [worker.pk, "LATE", encrypt_str(value).decode(), stamp, stamp],
            )
        return {"leak": get_secret("runner-test", "LATE")}

    outcome = perform(run.pk, body)

    run.refresh_from_db()
    assert (outcome.status, run.result) == ("succeeded", {"leak": "[redacted]"})


def test_a_run_that_ends_before_its_helpers_are_due_wakes_no_helper_thread(deployed):
    """Its heartbeat's first beat and its watchdog's deadline are seconds away: neither runs."""
    import threading
    import time

    run = _queue({"a": 1, "b": 2})
    seen: list[str] = []

    def body(run: Run, context: Any) -> dict[str, int]:
        time.sleep(0.1)  # time enough for a helper handed its job to have taken it up
        seen.extend(thread.name for thread in threading.enumerate())
        return {"sum": 3}

    outcome = perform(run.pk, body)

    assert outcome.status == "succeeded"
    assert [name for name in seen if name.startswith(f"run-{run.pk}-") or name == "time-limit"] == []


def _drop_connection() -> None:
    """The server ends this thread's connection, as a restart or a failover does."""
    pid = connection.connection.info.backend_pid
    url = "postgresql://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)
    with psycopg.connect(url, password=connection.settings_dict["PASSWORD"] or None, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def postgresql(kept_connection: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("drops a connection from the server's side (PostgreSQL)")


def test_a_run_is_claimed_on_a_kept_connection_the_server_dropped_meanwhile(postgresql):
    run_tool.apply(args=[_queue({"a": 0, "b": 0}).pk])  # the connection is open and kept
    run = _queue({"a": 1, "b": 2})
    _drop_connection()  # while the worker waited for its next task

    assert run_tool.apply(args=[run.pk]).get() == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.attempts, run.result) == ("succeeded", 1, {"sum": 3})


def test_an_outcome_is_recorded_when_the_connection_died_while_the_code_ran(postgresql):
    run = _queue({"a": 1, "b": 2})

    def body(run: Run, context: Any) -> dict[str, int]:
        _drop_connection()  # the database restarted while the code ran
        return {"sum": 3}

    outcome = perform(run.pk, body)

    run.refresh_from_db()
    assert (outcome.status, run.status, run.attempts, run.result) == ("succeeded", "succeeded", 1, {"sum": 3})


def test_an_accepted_signed_webhook_stores_its_event_and_run_in_one_statement(deployed, client):
    """Read the webhook with its signing secret, store event and run: no read for an earlier copy
    first (the event's unique digest settles a copy), and on PostgreSQL no transaction round trips."""
    import hashlib
    import hmac
    import json
    import time

    from connections.models import WebhookEvent
    from connections.secrets import set_secrets

    from .conftest import HOOK_SECRET

    set_secrets("runner-test", {"HOOK_SECRET": HOOK_SECRET})
    body = json.dumps({"action": "opened", "number": 5}).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(HOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"HTTP_X_SIGNATURE": f"sha256={signature}", "HTTP_X_TIMESTAMP": stamp}

    with CaptureQueriesContext(connection) as queries:
        answer = client.post("/webhooks/runner-test/signed/", body, content_type="application/json", **headers)

    assert answer.status_code == 202
    run = Run.objects.get()
    # Its status is not asserted: a worker of the session may have taken the run already.
    assert run.webhook_event == WebhookEvent.objects.get(status="accepted")
    if connection.vendor == "postgresql":
        assert _statements(queries) == ["SELECT", "WITH"]
    else:
        assert _statements(queries) == ["SELECT", "BEGIN", "INSERT", "INSERT", "COMMIT"]
    # A copy is answered with the first one's event and run, and stores nothing.
    again = client.post("/webhooks/runner-test/signed/", body, content_type="application/json", **headers)
    assert again.status_code == 200 and again.json()["run"] == run.pk
    assert Run.objects.count() == 1 and WebhookEvent.objects.filter(status="accepted").count() == 1


def _indexes_holding(table: str, pk: int) -> list[str]:
    """The indexes of `table` its row `pk` has an entry in as it is now: every index, but a partial
    one only where its predicate holds. A row version PostgreSQL cannot update in place (HOT) is
    added to each of these."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
            [table],
        )
        found = []
        for name, predicate in cursor.fetchall():
            if predicate is not None:
                cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s AND ({predicate})", [pk])  # noqa: S608
                if cursor.fetchone() is None:
                    continue
            found.append(name)
    return sorted(found)


@pytest.fixture
def postgresql_indexes(deployed: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's catalog of indexes and their predicates")


def test_a_tool_run_is_written_to_the_indexes_it_needs_only(postgresql_indexes):
    """Each of a run's three writes (queued, claimed, finished) changes its status, so PostgreSQL adds
    the new row version to every index that covers it: one index too many costs three entries a run."""
    run = _queue({"a": 1, "b": 2})
    queued = _indexes_holding("connections_run", run.pk)
    run_tool.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == "succeeded"
    finished = _indexes_holding("connections_run", run.pk)

    # The primary key, the worker (cascade), the tool (SET NULL), kind+status (metrics),
    # queued_at (the list's order), status+queued_at (queued and running runs).
    assert queued == [
        "connections_kind_37a82e_idx",
        "connections_run_pkey",
        "connections_run_queued_at_383081cb",
        "connections_run_worker_id_cd9f0504",
        "run_status_queued",
        "run_tool",
    ]
    # ...and, once it ended, finished_at (retention, metrics) and status+finished_at (failures).
    assert finished == sorted([*queued, "run_finished", "run_status_finished"])
