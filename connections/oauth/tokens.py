"""Access tokens: hand out a valid one, refreshing it exactly once across threads, processes and machines.

Every refresh happens in `refresh_connection`, under the connection's refresh lock (`locks.py`:
the row lock on PostgreSQL, a file lock on SQLite). Whoever waits for the lock re-reads the row
and, finding a fresh token, returns it without calling the provider. The provider's answer, new
refresh token included, is saved before the lock is released, so it cannot be lost in between.
Within one process, the threads that find the same token expired share one such call
(`_refresh_shared`): only one of them waits on the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.fernet import MultiFernet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import connection as db
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from encrypted_model_fields import fields as emf

from .. import metrics, prepared
from ..conf import app_settings
from ..exceptions import NotConnected, ReauthorizationRequired, TokenRefreshError, WorkerNotFound
from ..logging import remember
from ..models import Connection, TokenLifetime
from . import client
from .client import ProviderError, TokenResponse
from .locks import refresh_lock

logger = logging.getLogger(__name__)

Status = Connection.Status


@dataclass
class TokenRow(TokenLifetime):
    """The columns the hot path reads, with a Connection's freshness rules."""

    pk: int
    status: str
    access_token: str
    expires_at: dt.datetime | None
    connected_at: dt.datetime | None
    last_refreshed_at: dt.datetime | None
    last_error: str


@functools.cache
def _hot_sql(vendor: str) -> str:
    """One indexed read by worker slug and capability key (the ORM's query building costs more than it)."""
    from ..models import OAuthCapability, Worker

    q = db.ops.quote_name
    # SQLite's converter parses a datetime column with a regular expression (3 us each);
    # read as text, fromisoformat() does it in a tenth of that.
    stamps = ", ".join(
        f"CAST(c.{name} AS TEXT)" if vendor == "sqlite" else f"c.{name}"
        for name in ("expires_at", "connected_at", "last_refreshed_at")
    )
    # Only table and column names are interpolated; the values are query parameters. Named ones:
    # SQLite's backend turns `%s` into `?` with a regular expression over the whole statement (7 us
    # for this one, a tenth of the call), and named ones with one `%` formatting (1 us).
    return (
        f"SELECT c.id, c.status, c.access_token, {stamps}, c.last_error "  # noqa: S608
        f"FROM {q(Connection._meta.db_table)} c "
        f"JOIN {q(OAuthCapability._meta.db_table)} k ON k.id = c.capability_id "
        f"JOIN {q(Worker._meta.db_table)} w ON w.id = k.worker_id "
        f"WHERE w.slug = %(worker)s AND k.{q('key')} = %(key)s"
    )


def _datetime(value: Any) -> dt.datetime | None:
    """Raw-cursor datetimes: aware on PostgreSQL, naive UTC text on SQLite."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        try:
            value = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError(f"unreadable datetime in the connection row: {value!r}") from None
    # timezone.make_aware(value, UTC) without its checks, which cost as much as the rest of the read.
    return value if value.utcoffset() is not None else value.replace(tzinfo=dt.UTC)


@functools.cache
def _token_field() -> Any:
    """The access token's field, whose from_db_value decrypts (and refuses a value it cannot)."""
    return Connection._meta.get_field("access_token")


# Ciphertext -> (the crypter that decrypted it, the token). Decryption is a third of the hot
# path, and its answer depends only on the ciphertext and the key: a token read again unchanged is
# not decrypted again, while the row is still read every time (status, expiry, a refresh elsewhere
# all show). It holds no more than log redaction holds (`logging.remember`), under the same bound
# (WORKERS_LOG_REDACT_MAX_VALUES; 0 keeps nothing); a process that cycles through more tokens
# than that decrypts as before.
_decrypted: dict[str, tuple[MultiFernet, str]] = {}


def _plain_token(ciphertext: str | None, conn: Any) -> str:
    if not ciphertext:
        return ""
    crypter = emf.CRYPTER  # a key swapped in (tests, a reload) must not be answered from memory
    known = _decrypted.get(ciphertext)
    if known is not None and known[0] is crypter:
        remember(known[1])  # still blanked in logs, however many values were decrypted since
        return known[1]
    token = _token_field().from_db_value(ciphertext, None, conn) or ""
    limit = app_settings.LOG_REDACT_MAX_VALUES
    if len(_decrypted) >= limit:
        _decrypted.clear()
    if limit > 0:
        _decrypted[ciphertext] = (crypter, token)
    return token


def _hot_read(worker: str, key: str) -> TokenRow:
    conn = connections[DEFAULT_DB_ALIAS]  # the proxy `db` looks the connection up on every attribute
    row = prepared.fetchone(_hot_sql(conn.vendor), {"worker": worker, "key": key}, conn)
    if row is None:
        raise WorkerNotFound(f"Worker {worker} has no deployed OAuth capability {key!r}: run `workers deploy`.")
    pk, status, token, expires_at, connected_at, last_refreshed_at, last_error = row
    return TokenRow(
        pk,
        status,
        _plain_token(token, conn),
        _datetime(expires_at),
        _datetime(connected_at),
        _datetime(last_refreshed_at),
        last_error or "",
    )


def connection_row(worker: str, key: str, *fields: str) -> Connection:
    conn = (
        Connection.objects.filter(capability__worker__slug=worker, capability__key=key)
        .only("id", "status", "expires_at", "connected_at", "last_refreshed_at", "last_error", *fields)
        .first()
    )
    if conn is None:
        raise WorkerNotFound(f"Worker {worker} has no deployed OAuth capability {key!r}: run `workers deploy`.")
    return conn


def access_token(worker: str, key: str) -> str:
    """A valid access token for the capability; refreshes it first when it is about to expire.

    The hot path is one indexed read and one decryption (`make bench` measures it). While another
    thread of this process refreshes the token, a caller waits for that thread's answer instead.
    """
    since = None
    # Checked only while some refresh is under way in this process: the key costs more than the check.
    flight = _flights.get(_flight_key(worker, key)) if _flights else None
    if flight is not None and not db.in_atomic_block:
        token = flight.wait()
        if token is not None:
            return token
        since = flight.started  # it failed: ask as one of its waiters would
    conn = _hot_read(worker, key)
    if conn.is_fresh():
        return conn.access_token
    if conn.status == Status.NOT_CONNECTED:
        raise not_connected(conn.pk, key, ever=conn.connected_at is not None)
    if conn.status == Status.NEEDS_REAUTH:
        raise ReauthorizationRequired(key, conn.last_error or "the provider refused the refresh token")
    return _refresh_shared(_flight_key(worker, key), conn.pk, key, since)


@dataclass(eq=False)
class _Flight:
    """One refresh of a connection that the threads of this process wait for together."""

    started: dt.datetime
    done: threading.Event = field(default_factory=threading.Event)
    token: str | None = None  # what the refresh returned, for the threads already waiting

    def wait(self) -> str | None:
        """The token the refresh got; None if it failed (or outlived the refresh lock's bound)."""
        # The refresh lock's bound (a refresh holds it for at most one provider call), plus that call.
        self.done.wait(3 * app_settings.HTTP_TIMEOUT + 10)
        # Handed out here as well as by the refresh: a run waiting on it blanks it (logging.collecting).
        remember(self.token)
        return self.token


# (database alias, database name, worker, capability key): the refresh under way in this process.
_flights: dict[tuple[str, str, str, str], _Flight] = {}
_flights_lock = threading.Lock()


def _flight_key(worker: str, key: str) -> tuple[str, str, str, str]:
    return (db.alias, str(db.settings_dict["NAME"]), worker, key)


def _refresh_shared(
    flight_key: tuple[str, str, str, str], connection_id: int, key: str, since: dt.datetime | None
) -> str:
    """refresh_connection() for access_token(): one call per connection among this process's threads.

    The first thread to find the token expired calls it (refreshing, or waiting on the database for
    whichever process does); the others wait on its `_Flight`, without a database round trip, lock
    or transaction, and take the token it got. 16 threads of a process cost the database one
    waiter instead of 16, each making its round trips in turn on the process's one GIL. The token
    goes only to threads already waiting, in memory; nothing keeps it once they have it. When the
    first thread fails, each of the others calls refresh_connection() itself, as the first
    thread's peers, so a failure just recorded is not tried again (see `_refresh`) and the
    database, not this process, decides what each gets.
    """
    if db.in_atomic_block:
        return refresh_connection(connection_id)  # refused there, with the reason
    with _flights_lock:
        flight = _flights.get(flight_key)
        first = flight is None
        if flight is None:
            flight = _flights[flight_key] = _Flight(started=since or timezone.now())
    if first:
        try:
            flight.token = _refresh(
                connection_id, force=False, stale_token=None, valid_for=None, idle_before=None, key=key, since=since
            )[0]
            return flight.token
        finally:
            with _flights_lock:
                del _flights[flight_key]
            flight.done.set()
    token = flight.wait()
    if token is not None:
        return token
    return _refresh(
        connection_id, force=False, stale_token=None, valid_for=None, idle_before=None, key=key, since=flight.started
    )[0]


def not_connected(connection_id: int, key: str, *, ever: bool) -> NotConnected:
    """The error for a capability with no tokens, naming the admin page whose Connect button fixes it."""
    capability_id = Connection.objects.filter(pk=connection_id).values_list("capability_id", flat=True).first()
    try:
        path = reverse("admin:connections_oauthcapability_change", args=[capability_id])
    except NoReverseMatch:  # a site that does not mount the admin
        path = "/admin/"
    return NotConnected(key, app_settings.PUBLIC_URL + path, ever=ever)


def token_extra(worker: str, key: str) -> dict[str, Any]:
    """The rest of the last token response (e.g. Salesforce's instance_url)."""
    return connection_row(worker, key, "extra").extra or {}


def _key_of(connection_id: int) -> str:
    return Connection.objects.filter(pk=connection_id).values_list("capability__key", flat=True).first() or ""


def refresh_connection(
    connection_id: int,
    *,
    force: bool = False,
    stale_token: str | None = None,
    valid_for: timedelta | None = None,
    idle_before: dt.datetime | None = None,
) -> str:
    """Refresh under the lock and return the access token.

    Without `force`, a token found fresh once the lock is held (valid for `valid_for`, by default
    the refresh margin) is returned as is: another caller refreshed it. With `stale_token` (a token
    the provider just answered 401 to), a different stored token counts as already refreshed.
    `force` refreshes regardless; with `idle_before`, only if the refresh token has not been used
    since then.
    """
    return _refresh(connection_id, force=force, stale_token=stale_token, valid_for=valid_for, idle_before=idle_before)[
        0
    ]


@sensitive_variables("used", "answer")
def _refresh(
    connection_id: int,
    *,
    force: bool,
    stale_token: str | None,
    valid_for: timedelta | None,
    idle_before: dt.datetime | None,
    key: str = "",
    since: dt.datetime | None = None,
) -> tuple[str, bool]:
    """refresh_connection(), also saying whether this call refreshed (for the background tasks).

    `key` is the capability's key when the caller knows it; `since`, when the caller started
    asking (a failure recorded after it is not tried again), by default now.
    """
    if db.in_atomic_block:
        # A rollback of the caller's transaction would undo the saved answer after the provider
        # rotated the refresh token: the connection would be lost. Refuse rather than risk it.
        raise TokenRefreshError(
            key or _key_of(connection_id),
            "a token refresh cannot run inside a database transaction; call access_token() before transaction.atomic()",
            retryable=False,
        )
    started = since or timezone.now()
    failure: Exception | None = None

    def wanted(conn: Connection) -> bool:
        if idle_before is not None and (conn.last_refreshed_at or conn.connected_at or started) >= idle_before:
            return False  # used since the caller looked: nothing to keep alive
        return force or not conn.is_fresh(valid_for) or (stale_token is not None and conn.access_token == stale_token)

    key = key or _key_of(connection_id)
    with refresh_lock(connection_id, key, settled=lambda conn: not wanted(conn)) as conn:
        if not wanted(conn):
            return conn.access_token, False
        if conn.status == Status.NOT_CONNECTED:
            raise not_connected(conn.pk, key, ever=conn.connected_at is not None)
        if conn.status == Status.NEEDS_REAUTH:
            failure = ReauthorizationRequired(key, conn.last_error or "the provider refused the refresh token")
        elif conn.status == Status.REFRESH_FAILING and conn.last_error_at and conn.last_error_at >= started:
            # The caller that held the lock before us has just failed: do not queue up behind it
            # calling a provider that is down, one timeout after another.
            failure = TokenRefreshError(key, conn.last_error, retryable=True)
        elif not conn.has_refresh_token:
            reason = (
                "the provider rejected the access token and issued no refresh token"
                if stale_token is not None
                else "the token expired and the provider issued no refresh token"
            )
            _mark(conn, Status.NEEDS_REAUTH, reason)
            failure = ReauthorizationRequired(key, reason)
        else:
            used = conn.refresh_token
            try:
                answer = client.refresh(conn.capability, used)
            except ProviderError as exc:
                metrics.count(metrics.TOKEN_REFRESHES, "refused" if exc.is_invalid_grant else "failed")
                failure = _refresh_failed(conn, exc)
            else:
                store_tokens(conn, answer, refreshed=True)
                metrics.count(metrics.TOKEN_REFRESHES, "succeeded")
                logger.info("Refreshed the token of %s (expires %s)", conn.capability, conn.expires_at)
                return conn.access_token, True
    # Raised once the lock's transaction has committed, so the recorded status and error are kept.
    assert failure is not None
    raise failure


def _refresh_failed(conn: Connection, exc: ProviderError) -> Exception:
    # The row was read under the lock, after any other refresher committed, so the refresh token
    # we sent is the current one: a refusal here is a revocation, not a lost race.
    key = conn.capability.key
    if exc.is_invalid_grant:
        _mark(conn, Status.NEEDS_REAUTH, f"the provider refused the refresh token ({exc.message})")
        logger.warning("Connection %s needs re-authorization: %s", conn.capability, exc.message)
        return ReauthorizationRequired(key, conn.last_error)
    _mark(conn, Status.REFRESH_FAILING, exc.message, failed=True)
    logger.warning(
        "Refreshing %s failed (%s attempt(s) in a row): %s", conn.capability, conn.failure_count, exc.message
    )
    return TokenRefreshError(key, exc.message, retryable=exc.retryable, retry_after=exc.retry_after)


def _mark(conn: Connection, status: str, error: str, *, failed: bool = False) -> None:
    """Record a failure; the refresh token is never discarded here."""
    conn.status = status
    conn.last_error = error
    conn.last_error_at = timezone.now()
    if failed:
        conn.failure_count += 1
    conn.save(update_fields=["status", "last_error", "last_error_at", "failure_count", "updated_at"])


@sensitive_variables("answer")
def store_tokens(conn: Connection, answer: TokenResponse, *, refreshed: bool) -> None:
    """Save a token response; a response without a refresh token keeps the stored one."""
    now = timezone.now()
    conn.access_token = answer.access_token
    if answer.refresh_token:
        conn.refresh_token = answer.refresh_token
    conn.has_refresh_token = bool(conn.refresh_token)
    conn.token_type = answer.token_type
    if answer.scope or not refreshed:
        conn.granted_scope = answer.scope
    conn.expires_at = answer.expires_at
    extra = dict(conn.extra or {}) if refreshed else {}
    extra.update(answer.extra)
    conn.extra = extra
    conn.status = Status.CONNECTED
    conn.failure_count = 0
    conn.last_error = ""
    conn.last_error_at = None
    if refreshed:
        conn.last_refreshed_at = now
        conn.refresh_count += 1
    else:
        conn.connected_at = now
        conn.last_refreshed_at = None
    conn.save()


def disconnect(connection_id: int) -> list[str]:
    """Forget the tokens, revoking them at the provider first where it supports RFC 7009.

    Returns problems worth telling the user (a revocation the provider refused); the tokens are
    forgotten either way.
    """
    problems: list[str] = []
    with refresh_lock(connection_id) as conn:
        capability = conn.capability  # disconnect
        if capability.revocation_endpoint and conn.status != Status.NOT_CONNECTED:
            for token, hint in ((conn.refresh_token, "refresh_token"), (conn.access_token, "access_token")):
                if not token:
                    continue
                try:
                    client.revoke(capability, token, hint)
                except ProviderError as exc:
                    problems.append(f"revoking the {hint.replace('_', ' ')} failed: {exc.message}")
                except Exception as exc:  # a missing client secret must not keep the tokens
                    problems.append(f"revoking the {hint.replace('_', ' ')} failed: {exc}")
                    break
        conn.forget_tokens()
    return problems


def refresh_for_care(
    connection_id: int, *, valid_for: timedelta | None = None, idle_before: dt.datetime | None = None
) -> str:
    """For the background tasks: "refreshed", "skipped" (not needed any more) or "failed"; never raises."""
    try:
        _, refreshed = _refresh(
            connection_id, force=idle_before is not None, stale_token=None, valid_for=valid_for, idle_before=idle_before
        )
    except (ReauthorizationRequired, TokenRefreshError):
        return "failed"  # recorded on the connection and logged by _refresh
    return "refreshed" if refreshed else "skipped"


__all__ = ["TokenRefreshError", "access_token", "disconnect", "refresh_connection", "store_tokens"]
