"""Prepared statements on PostgreSQL for the few statements run thousands of times a second.

Django binds parameters on the client, so PostgreSQL parses and plans every statement again: for
the token hot path's three-table join, planning is half the round trip (0.25 ms a call against
0.10 ms prepared, pgbench here). `fetchone()`, `fetchall()` and `rowcount()` run a statement
prepared once per connection, through Django's cursor wrapper (errors wrapped, queries logged and
counted). Only its own statements are prepared: psycopg's threshold, which Django leaves unset, is
set for the one execution and unset again, so psycopg neither prepares nor keeps the text of any
other statement.
A statement that went stale makes its connection stop preparing (see `fetchone`).

Off when WORKERS_PREPARED_STATEMENTS is false, and whenever the project configures
`server_side_binding` or `prepare_threshold` itself (its choice stands); on SQLite, a plain cursor.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from django.db import DatabaseError, transaction
from django.db import connection as db
from django.db.backends.base.base import BaseDatabaseWrapper

from .conf import app_settings

T = TypeVar("T")

_USER_CHOICES = ("server_side_binding", "prepare_threshold")
# The prepared statement is gone (a pooler gave this session another server; a DEALLOCATE), one by
# that name exists there already (a pooler's server shared with another client), or its plan's
# result changed under it (a migration altered a column it returns).
_STALE = {"26000", "42P05", "0A000"}
# Raw connections on which a prepared statement went stale: they run unprepared until replaced.
_unprepared: weakref.WeakSet[Any] = weakref.WeakSet()


def enabled(conn: Any = db) -> bool:
    """True where `fetchone()` prepares its statements."""
    if conn.vendor != "postgresql" or not app_settings.PREPARED_STATEMENTS:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    options = conn.settings_dict.get("OPTIONS") or {}
    return is_psycopg3 and not any(name in options for name in _USER_CHOICES)


@functools.cache
def _preparing() -> type:
    """Django's server-binding cursor class, preparing each statement it runs, and only those."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class Preparing(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
            raw = self.connection
            # Set, psycopg would count (and keep the text of) every statement of Django's own cursors.
            raw.prepare_threshold = 0
            try:
                return super().execute(query, params, prepare=True, **kwargs)
            finally:
                raw.prepare_threshold = None

        def _send_query_prepared(self, name: bytes, pgq: Any, *, binary: bool | None = None) -> None:
            # psycopg keeps the statement for unprepared queries only, and Django's query log (DEBUG,
            # assertNumQueries, the debug toolbar) reads it from there: without this, a prepared
            # statement was logged as None.
            self._query = pgq
            super()._send_query_prepared(name, pgq, binary=binary)

    return Preparing


def _prepared_cursor(conn: BaseDatabaseWrapper) -> Any:
    """A Django cursor that prepares its statements, or None where this connection must not."""
    # What connection.cursor() does before it makes its cursor: health check, connect, thread check.
    # No per-cursor time zone loader: Django registers its loader on the connection when it connects.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    if conn.connection in _unprepared:
        return None
    wrap = conn.make_debug_cursor if conn.queries_logged else conn.make_cursor
    with conn.wrap_database_errors:
        return wrap(_preparing()(conn.connection))


def fetchone(sql: str, params: Sequence[Any] | Mapping[str, Any], conn: Any = db) -> tuple[Any, ...] | None:
    """The first row of `sql` (%s or %(name)s placeholders), prepared once per connection on PostgreSQL.

    A prepared statement can go stale under the connection (see _STALE). That connection then
    stops preparing, and outside a transaction the statement runs again at once, unprepared (a stale
    statement fails before it runs, so an UPDATE or INSERT is not applied twice): the caller sees one
    failed attempt, not an error on every call until the connection ages out.
    Inside a transaction the error stands: the transaction has failed anyway. Any other error
    (a timeout, an outage) is raised as it is, not retried.
    """
    return _execute(sql, params, conn, lambda cursor: cursor.fetchone())


def fetchall(sql: str, params: Sequence[Any] | Mapping[str, Any], conn: Any = db) -> list[tuple[Any, ...]]:
    """Every row of `sql`, prepared as `fetchone` prepares it."""
    return _execute(sql, params, conn, lambda cursor: cursor.fetchall())


def rowcount(sql: str, params: Sequence[Any] | Mapping[str, Any], conn: Any = db) -> int:
    """How many rows `sql` (an UPDATE or DELETE) changed, prepared as `fetchone` prepares it."""
    return _execute(sql, params, conn, lambda cursor: cursor.rowcount)


def _execute(sql: str, params: Sequence[Any] | Mapping[str, Any], conn: Any, fetch: Callable[[Any], T]) -> T:
    # As the ORM's writes do: a failed statement inside atomic() marks the transaction for rollback,
    # so a caller that catches the error cannot carry on in a transaction PostgreSQL has aborted.
    with transaction.mark_for_rollback_on_error(conn.alias):
        return _attempt(sql, params, conn, fetch)


def _attempt(sql: str, params: Sequence[Any] | Mapping[str, Any], conn: Any, fetch: Callable[[Any], T]) -> T:
    cursor = _prepared_cursor(conn) if enabled(conn) else None
    if cursor is not None:
        try:
            with cursor:
                cursor.execute(sql, params)
                return fetch(cursor)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in _STALE:
                raise
            _unprepared.add(conn.connection)
            if conn.in_atomic_block or not conn.get_autocommit():
                raise
    with conn.cursor() as plain:
        plain.execute(sql, params)
        return fetch(plain)
