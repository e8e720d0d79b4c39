"""access_token() with a valid token against its floor: one indexed read plus one Fernet decryption."""

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


def _median_seconds(func: Callable[[], object], rounds: int, calls: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            func()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


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
    from connections.oauth.tokens import access_token

    pk = _setup()
    table = connection.ops.quote_name("connections_connection")

    def floor() -> str:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT access_token FROM {table} WHERE id = %s", [pk])  # noqa: S608
            (value,) = cursor.fetchone()
        return emf.decrypt_str(value)

    def hot_path() -> str:
        return access_token("bench", "benchAuth")

    assert hot_path() == floor()  # same answer, or the comparison means nothing
    with CaptureQueriesContext(connection) as queries:
        hot_path()
    baseline = _median_seconds(floor, rounds, calls)
    measured = _median_seconds(hot_path, rounds, calls)
    ctx.figure(
        "access_token() with a valid token",
        ratio=measured / baseline,
        baseline="one indexed read + one decryption",
        target=1.5,
        detail=f"{len(queries)} query per call, median of {rounds} x {calls} calls",
    )
