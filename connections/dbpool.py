"""Closing a process's database connections, connection pools included (the web server's pool).

Django closes a request's connection (back to the pool when there is one) but never the pool
itself: a process that forks, or is stopping, closes it here.
"""

from __future__ import annotations

from django.db import connections


def close_database_connections() -> None:
    """Close every connection this process opened, and any connection pool with its threads."""
    connections.close_all()
    for conn in connections.all(initialized_only=True):
        # PostgreSQL's backend only; its close_pool() would first open a pool that is not there.
        if conn.alias in getattr(type(conn), "_connection_pools", ()):
            conn.close_pool()
