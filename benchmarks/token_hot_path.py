"""access_token() with a valid token against its floor: one indexed read plus one Fernet decryption.

The floor reads through the same cursor as the hot path (`prepared.fetchone`: a prepared statement on
PostgreSQL), so the ratio is what the hot path adds to the cheapest read, not what preparing saves.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from encrypted_model_fields import fields as emf

from .report import Context


def _median_seconds(funcs: list[Callable[[], object]], rounds: int, calls: int) -> list[float]:
    """Each function's median time per call; their rounds alternate, so a slower stretch of the
    machine weighs on all of them alike."""
    samples: list[list[float]] = [[] for _ in funcs]
    for _ in range(rounds):
        for func, times in zip(funcs, samples, strict=True):
            start = time.perf_counter()
            for _ in range(calls):
                func()
            times.append((time.perf_counter() - start) / calls)
    return [statistics.median(times) for times in samples]


def _setup() -> int:
    from connections.models import Connection, OAuthCapability, Worker

    worker, _ = Worker.objects.get_or_create(slug="bench", defaults={"module": "bench"})
    capability, _ = OAuthCapability.objects.get_or_create(
        worker=worker,
        key="benchAuth",
        defaults={
            "name": "bench",
            "authorization_endpoint": "https://example.test/a",
            "token_endpoint": "https://example.test/t",
            "scope": "read",
        },
    )
    now = timezone.now()
    conn, _ = Connection.objects.update_or_create(
        capability=capability,
        defaults={
            "status": Connection.Status.CONNECTED,
            "access_token": "a" * 40,
            "refresh_token": "r" * 40,
            "has_refresh_token": True,
            "expires_at": now + timedelta(hours=1),
            "connected_at": now,
        },
    )
    return conn.pk


def run(ctx: Context) -> None:
    rounds, calls = ctx.scale(7, 2), ctx.scale(2000, 200)
    from connections import prepared
    from connections.oauth import tokens
    from connections.oauth.tokens import access_token

    pk = _setup()
    table = connection.ops.quote_name("connections_connection")

    def floor() -> str:
        (value,) = prepared.fetchone(f"SELECT access_token FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return emf.decrypt_str(value)

    def hot_path() -> str:
        return access_token("bench", "benchAuth")

    def first_read() -> str:  # as after a refresh: a ciphertext this process has not decrypted yet
        tokens._decrypted.clear()
        return access_token("bench", "benchAuth")

    assert hot_path() == floor()  # same answer, or the comparison means nothing
    with CaptureQueriesContext(connection) as queries:
        hot_path()
    baseline, measured, first = _median_seconds([floor, hot_path, first_read], rounds, calls)
    ctx.figure(
        "access_token() with a valid token",
        ratio=measured / baseline,
        baseline="one indexed read + one decryption",
        target=1.5,
        detail=f"{len(queries)} query per call, median of {rounds} x {calls} calls; the token is decrypted "
        "once while its ciphertext is unchanged",
    )
    ctx.figure(
        "access_token(), a token not yet decrypted here",
        ratio=first / baseline,
        baseline="one indexed read + one decryption",
        target=1.5,
        detail="the first read after a refresh, or in a new process: the row read and decrypted",
    )
