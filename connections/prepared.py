"""Prepared statements for the few hot statements run thousands of times a second.

Django talks to PostgreSQL with client-side binding: every statement is sent as text, then parsed
and planned again. For the token hot path's three-table join, planning is half the round trip
(0.25 ms per call against 0.10 ms prepared, pgbench here). `prepared_cursor()` gives the usual
Django cursor (errors wrapped, queries logged and counted) over a server-binding psycopg cursor
whose statements are prepared once per connection. Only its statements are prepared: Django's own
cursors cannot prepare (psycopg's ClientCursor never does), so setting the connection's
threshold, which Django leaves unset, changes nothing else.

Off when WORKERS_PREPARED_STATEMENTS is false (a pooler in transaction mode that keeps no prepared
statements across server connections, e.g. PgBouncer before 1.21), and whenever the project
configures `server_side_binding` or `prepare_threshold` itself: its choice stands. Elsewhere
(SQLite) it is `connection.cursor()`.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection as db
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from .conf import app_settings

_USER_CHOICES = ("server_side_binding", "prepare_threshold")


def enabled(conn: BaseDatabaseWrapper = db) -> bool:
    """True where `prepared_cursor()` prepares its statements."""
    if conn.vendor != "postgresql" or not app_settings.PREPARED_STATEMENTS:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    options = conn.settings_dict.get("OPTIONS") or {}
    return is_psycopg3 and not any(name in options for name in _USER_CHOICES)


@functools.cache
def _preparing() -> type:
    """Django's server-binding cursor class, asking psycopg to prepare every statement it runs."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class Preparing(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
            return super().execute(query, params, prepare=True, **kwargs)

    return Preparing


def prepared_cursor(conn: BaseDatabaseWrapper = db) -> CursorWrapper:
    """A Django cursor (use it in `with`) whose statements PostgreSQL parses and plans once per connection."""
    if not enabled(conn):
        return conn.cursor()
    # What connection.cursor() does before it makes a cursor: health check, connect, thread check.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    raw = conn.connection
    if raw.prepare_threshold is None:  # Django's default, which would refuse even prepare=True
        raw.prepare_threshold = 5
    wrap = conn.make_debug_cursor if conn.queries_logged else conn.make_cursor
    return wrap(_preparing()(raw))
