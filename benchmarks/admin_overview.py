"""The admin's overview (its index) with 100,000 runs against the same page on an empty site."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_test_environment
from django.utils import timezone

from .report import Context


def _render(client: Client, rounds: int) -> tuple[float, int]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get("/admin/")
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get("/admin/")
    return statistics.median(samples), len(queries)


def _site() -> Client:
    from django.contrib.auth import get_user_model

    from connections.models import OAuthCapability, Sync, SyncedDatabase, Worker

    worker = Worker.objects.create(slug="bench", module="bench")
    database = SyncedDatabase.objects.create(worker=worker, key="db", title="db", primary_key="id")
    for n in range(5):
        Sync.objects.create(worker=worker, key=f"sync{n}", database=database, schedule="manual")
    OAuthCapability.objects.bulk_create(
        [
            OAuthCapability(
                worker=worker,
                key=f"auth{n}",
                name="bench",
                authorization_endpoint="https://example.test/a",
                token_endpoint="https://example.test/t",
            )
            for n in range(50)
        ]
    )
    user = get_user_model().objects.create_superuser("bench", "bench@example.test", "bench-password-1")
    client = Client()
    client.force_login(user)
    return client


def _fill(runs: int) -> None:
    from connections.models import Run, Sync, WebhookRefusalCount, Worker

    worker = Worker.objects.get(slug="bench")
    syncs = list(Sync.objects.all())
    now = timezone.now()
    batch = []
    for n in range(runs):
        status = (Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.SUCCEEDED, Run.Status.QUEUED)[n % 4]
        sync = syncs[n % len(syncs)] if n % 2 else None
        batch.append(
            Run(
                kind=Run.Kind.SYNC if sync else Run.Kind.TOOL,
                worker=worker,
                target=sync.key if sync else "tool",
                sync=sync,
                status=status,
                error="failed" if status == Run.Status.FAILED else "",
                finished_at=None if status == Run.Status.QUEUED else now - timedelta(minutes=n % 5000),
            )
        )
        if len(batch) == 5000:
            Run.objects.bulk_create(batch)
            batch = []
    Run.objects.bulk_create(batch)
    hour = now.replace(minute=0, second=0, microsecond=0)
    WebhookRefusalCount.objects.bulk_create(
        [
            WebhookRefusalCount(scope=f"bench/hook{n % 50}", hour=hour - timedelta(hours=n // 50), refused=n % 7 + 1)
            for n in range(2000)
        ]
    )


def run(ctx: Context) -> None:
    setup_test_environment()  # the test client's host ("testserver") is allowed
    rounds, runs = ctx.scale(9, 3), ctx.scale(100_000, 2_000)
    client = _site()
    client.get("/admin/")  # warm: templates compiled, caches filled
    empty, empty_queries = _render(client, rounds)
    _fill(runs)
    full, full_queries = _render(client, rounds)
    ctx.figure(
        f"admin overview with {runs:,} runs",
        ratio=full / empty,
        baseline="the same page with no runs",
        target=3,
        detail=f"{empty * 1000:.0f} ms -> {full * 1000:.0f} ms; queries {empty_queries} -> {full_queries}",
    )
