"""The per-connection refresh lock: one refresh at a time across threads, processes and machines.

PostgreSQL (and any database with SELECT ... FOR UPDATE): the connection's row lock, held by the
transaction that calls the provider and saves the answer. Waiters block on the row, then read the
row as the refresher committed it.

SQLite: its only lock is the whole database's, and holding that across an HTTP call would stall
every other writer (the built-in sandbox provider writes to the same file while it answers). SQLite
serves one machine, so an exclusive `flock` on a file beside the database does the same job for
every thread and process there, and each write stays a short transaction of its own.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import OperationalError, connection, transaction

from ..conf import app_settings
from ..exceptions import TokenRefreshError
from ..models import Connection


def _lock_path(connection_id: int) -> Path:
    name = str(connection.settings_dict["NAME"])
    in_memory = not name or ":memory:" in name or "mode=memory" in name
    folder = Path(tempfile.gettempdir()) / "workers-locks" if in_memory else Path(f"{name}.locks")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"connection-{connection_id}.lock"


@contextmanager
def _file_lock(connection_id: int, key: str) -> Iterator[None]:
    # Bounded: a refresh holds the lock for at most one provider call.
    deadline = time.monotonic() + 2 * app_settings.HTTP_TIMEOUT + 10
    fd = os.open(_lock_path(connection_id), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TokenRefreshError(
                        key, "another refresh of this connection is taking too long", retryable=True
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# Django's ORM has no FOR SHARE: the row's table (Connection._meta.db_table) named as it is. The
# wait and the read in one statement: the columns `settled` looks at (TokenLifetime's), as
# committed by the holder.
_WAIT_FOR_HOLDER = (
    "SELECT id, status, access_token, expires_at, connected_at, last_refreshed_at "
    "FROM connections_connection WHERE id = %s FOR SHARE"
)


def _lock_timeout() -> None:
    if connection.vendor == "postgresql":
        # Bounded like the file lock: a waiter gives up rather than hold a connection forever.
        timeout_ms = int((2 * app_settings.HTTP_TIMEOUT + 10) * 1000)
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = {timeout_ms}")


def _too_long(exc: OperationalError, key: str) -> TokenRefreshError:
    if getattr(getattr(exc, "__cause__", None), "sqlstate", "") != "55P03":  # lock_not_available
        raise exc
    return TokenRefreshError(key, "another refresh of this connection is taking too long", retryable=True)


@contextmanager
def refresh_lock(
    connection_id: int, key: str = "", settled: Callable[[Connection], bool] | None = None
) -> Iterator[Connection]:
    """Hold the connection's refresh lock and yield its row as last committed.

    With `settled`, on PostgreSQL: when another caller holds the lock, wait until it commits and
    yield the row without the lock if `settled(row)` (the caller has nothing to write: it will only
    read the token just stored). Waiters get that shared lock all at once, where each would
    otherwise take the row in turn: 64 callers of one expired token wait for one refresh, not 64.
    That row has only the token's columns (TokenLifetime's); the others load when read.
    """
    rows = Connection.objects.select_related("capability__worker")
    key = key or str(connection_id)
    if settled is not None and connection.vendor == "postgresql":
        with transaction.atomic():
            # SKIP LOCKED: no row when another caller holds the lock, where NOWAIT would raise and
            # need a savepoint around it; the first caller takes the lock in one round trip.
            locked = rows.select_for_update(skip_locked=True, of=("self",)).filter(pk=connection_id).first()
            if locked is not None:
                yield locked
                return
            _lock_timeout()
            try:
                row = next(iter(Connection.objects.raw(_WAIT_FOR_HOLDER, [connection_id])), None)
            except OperationalError as exc:
                raise _too_long(exc, key) from None
            if row is not None and settled(row):
                yield row
                return
        # The other caller's refresh failed: take the lock in turn (holding the shared lock while
        # asking for it could deadlock with another waiter doing the same).
    if connection.features.has_select_for_update:
        with transaction.atomic():
            _lock_timeout()
            try:
                locked = rows.select_for_update(of=("self",)).get(pk=connection_id)
            except OperationalError as exc:
                raise _too_long(exc, key) from None
            yield locked
    else:
        with _file_lock(connection_id, key):
            yield rows.get(pk=connection_id)
