"""Prepared statements on PostgreSQL for the few statements run thousands of times a second.

Django binds parameters on the client, so PostgreSQL parses and plans every statement again: for
the token hot path's three-table join, planning is half the round trip (0.25 ms a call against
0.10 ms prepared, pgbench here). `fetchone()` runs a statement prepared once per connection,
through Django's cursor wrapper (errors wrapped, queries logged and counted). Only its own
statements are prepared: psycopg's threshold, which Django leaves unset, is set for the one
execution and unset again, so psycopg neither prepares nor keeps the text of any other statement.

Off when WORKERS_PREPARED_STATEMENTS is false, and whenever the project configures
`server_side_binding` or `prepare_threshold` itself (its choice stands); on SQLite, a plain cursor.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError
from django.db import connection as db
from django.db.backends.base.base import BaseDatabaseWrapper

from .conf import app_settings

_USER_CHOICES = ("server_side_binding", "prepare_threshold")


def enabled(conn: Any = db) -> bool:
    """True where `fetchone()` prepares its statements."""
    if conn.vendor != "postgresql" or not app_settings.PREPARED_STATEMENTS:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    options = conn.settings_dict.get("OPTIONS") or {}
    pool = options.get("pool")
    pool_kwargs = pool.get("kwargs", {}) if isinstance(pool, dict) else {}
    return is_psycopg3 and not any(name in options or name in pool_kwargs for name in _USER_CHOICES)


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

    return Preparing


def _prepared_cursor(conn: BaseDatabaseWrapper) -> Any:
    # What connection.cursor() does before it makes its cursor: health check, connect, thread check.
    # A per-cursor time zone loader is not set: the site's TIME_ZONE is UTC, which Django sets on
    # the connection itself.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    wrap = conn.make_debug_cursor if conn.queries_logged else conn.make_cursor
    with conn.wrap_database_errors:
        return wrap(_preparing()(conn.connection))


def fetchone(sql: str, params: Sequence[Any], conn: Any = db) -> tuple[Any, ...] | None:
    """The first row of `sql` (with %s placeholders), prepared once per connection on PostgreSQL.

    A prepared statement can go stale under the connection: a pooler in transaction mode that
    moved it to a server without the statement, or a migration that changed the columns it returns.
    Outside a transaction the connection is then replaced and the statement run once more,
    unprepared, so a reader sees one slow call, not an error on every call until the connection
    ages out. Inside one the error stands: the transaction has failed anyway.
    """
    if not enabled(conn):
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    try:
        with _prepared_cursor(conn) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except DatabaseError:
        if conn.in_atomic_block:
            raise
        conn.close()
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
