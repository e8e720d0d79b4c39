"""Closing a process's database connections, connection pools included (the web server's pool).

Django closes a request's connection (back to the pool when there is one) but never the pool
itself: a process that forks, or is stopping, closes it here.
"""

from __future__ import annotations

from django.db import connections


def close_database_connections() -> None:
    """Close this thread's connections, and the process's connection pools with their threads.

    A pool belongs to the process, whichever thread opened it: each alias's wrapper is looked at
    from here (made for this thread if need be, which connects nothing).
    """
    connections.close_all()
    for alias in connections:
        conn = connections[alias]
        # PostgreSQL's backend only; its close_pool() would first open a pool that is not there.
        if alias in getattr(type(conn), "_connection_pools", ()):
            conn.close_pool()
