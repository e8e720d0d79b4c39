"""prepared.fetchone(): the token hot path's statement is prepared on PostgreSQL, unless told not to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections import prepared
from connections.models import Connection, OAuthCapability, Worker
from connections.oauth.tokens import access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connected() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    worker = Worker.objects.create(slug="prep", module="prep")
    capability = OAuthCapability.objects.create(
        worker=worker,
        key="prepAuth",
        name="prep",
        authorization_endpoint="https://example.test/a",
        token_endpoint="https://example.test/t",
        scope="read",
    )
    now = timezone.now()
    Connection.objects.create(
        capability=capability,
        status=Connection.Status.CONNECTED,
        access_token="prepared-token-value",
        expires_at=now + timedelta(hours=1),
        connected_at=now,
    )
    connection.close()  # a new connection: nothing prepared on it yet
    return "prepared-token-value"


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_hot_path_statement_is_prepared_once_per_connection_and_still_counted(connected):
    with CaptureQueriesContext(connection) as queries:
        assert access_token("prep", "prepAuth") == connected
        assert access_token("prep", "prepAuth") == connected
    assert len(queries) == 2  # Django's query log and assertNumQueries still see it, with its text
    assert all("connections_oauthcapability" in query["sql"] for query in queries.captured_queries)
    hot = [s for s in prepared_statements() if "connections_oauthcapability" in s]
    assert len(hot) == 1


def assert_nothing_prepared(token: str) -> None:
    assert not prepared.enabled()
    assert access_token("prep", "prepAuth") == token
    assert prepared_statements() == []


def test_nothing_is_prepared_when_turned_off(connected, settings):
    settings.WORKERS_PREPARED_STATEMENTS = False
    assert_nothing_prepared(connected)


def test_nothing_is_prepared_when_the_project_chose_its_own_threshold(connected, monkeypatch):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "prepare_threshold", None)
    assert_nothing_prepared(connected)


def test_a_statement_prepared_inside_a_rolled_back_transaction_still_serves(connected):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        assert access_token("prep", "prepAuth") == connected
        raise RuntimeError("the caller's transaction fails")
    assert access_token("prep", "prepAuth") == connected


def test_a_statement_the_server_forgot_costs_one_attempt_not_an_error_per_call(connected):
    """As behind a pooler that gave the session another server: psycopg still thinks it is prepared."""
    assert access_token("prep", "prepAuth") == connected
    first = connection.connection
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with CaptureQueriesContext(connection) as queries:
        assert access_token("prep", "prepAuth") == connected  # failed prepared, then read plainly
        assert access_token("prep", "prepAuth") == connected  # this connection no longer prepares
    assert len(queries) == 3
    assert connection.connection is first  # kept: a caller's other cursors on it are not cut off
    assert [s for s in prepared_statements() if "connections_oauthcapability" in s] == []


def test_inside_a_transaction_a_stale_statement_fails_it_once(connected):
    from django.db import DatabaseError, transaction

    assert access_token("prep", "prepAuth") == connected
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError), transaction.atomic():
        access_token("prep", "prepAuth")
    with transaction.atomic():
        assert access_token("prep", "prepAuth") == connected


def test_other_errors_are_raised_not_retried(connected):
    from django.db import DatabaseError

    with CaptureQueriesContext(connection) as queries, pytest.raises(DatabaseError, match="division by zero"):
        prepared.fetchone("SELECT 1 / %s", [0])
    assert len(queries) == 1
    assert prepared.fetchone("SELECT 1 / %s", [1]) == (1,)  # the connection still prepares


def test_other_statements_are_neither_prepared_nor_remembered(connected):
    assert access_token("prep", "prepAuth") == connected
    for i in range(10):
        Worker.objects.filter(slug=f"other-{i}").exists()
    assert connection.connection.prepare_threshold is None  # Django's own cursors as Django left them
    assert not connection.connection._prepared._counts  # nor their statements' text kept (psycopg's cache)
    assert [s for s in prepared_statements() if "connections_oauthcapability" not in s] == []
