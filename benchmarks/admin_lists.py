"""Every admin changelist at 100,000 rows against its own empty render, and its SQL query count.

A superuser (Django's test Client, force_login) renders each changelist of connections/admin/ on
an empty database, then again once every table an admin lists holds `size` rows. The figure is
full/empty (median of several renders); the detail gives both query counts, which must be equal.

Workers are few on any site (one per module in WORKER_MODULES) and every other page filters by
them, so the tables are filled over a handful of workers; the workers list itself is measured
last, once the workers table holds `size` rows too.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from .report import Context

BATCH = 2_000
PAGE = 100  # rows on one page of a changelist (ModelAdmin.list_per_page)
WORKERS = 10


@contextlib.contextmanager
def _explicit_times(*fields: models.DateTimeField) -> Iterator[None]:
    """Let bulk_create store the times given (spread over months) instead of now()."""
    saved = [(field, field.auto_now, field.auto_now_add) for field in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _bulk(model: type[models.Model], rows: Iterator[models.Model]) -> None:
    batch: list[models.Model] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            model.objects.bulk_create(batch)
            batch = []
    if batch:
        model.objects.bulk_create(batch)


def fill(size: int, *, start: int = 0, workers: int = WORKERS) -> None:
    """`size` more rows (numbered from `start`) in every table an admin changelist shows but the
    workers (`workers` of them, created by the first call)."""
    from connections.models import (
        Connection,
        OAuthCapability,
        Pacer,
        Record,
        Run,
        Secret,
        Sync,
        SyncedDatabase,
        Tool,
        Webhook,
        WebhookEvent,
        WebhookRefusalCount,
        Worker,
    )
    from connections.text import natural_sort_key

    now = timezone.now()
    if not start:
        Worker.objects.bulk_create([Worker(slug=f"bench-{w:02d}", module=f"bench.w{w}") for w in range(workers)])
    owners = list(Worker.objects.filter(slug__startswith="bench-").order_by("pk"))

    def owner(i: int) -> Worker:
        return owners[i % len(owners)]

    _bulk(Secret, (Secret(worker=owner(i), name=f"SECRET_{i}", value="") for i in range(start, start + size)))
    last = OAuthCapability.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    _bulk(
        OAuthCapability,
        (
            OAuthCapability(
                worker=owner(i),
                key=f"auth{i}",
                name=f"Auth {i}",
                authorization_endpoint="https://example.test/authorize",
                token_endpoint="https://example.test/token",
                client_id={"secret": f"CLIENT_ID_{i % 50}"},
                client_secret_ref=f"CLIENT_SECRET_{i % 50}",
            )
            for i in range(start, start + size)
        ),
    )
    capabilities = OAuthCapability.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
    _bulk(
        Connection,
        (
            Connection(capability_id=pk, status=Connection.Status.CONNECTED, expires_at=now + timedelta(hours=1))
            for n, pk in enumerate(capabilities.iterator())
            if n % 2 == 0
        ),
    )
    properties = {"Name": {"type": "title"}, "Done": {"type": "checkbox"}}
    _bulk(
        SyncedDatabase,
        (
            SyncedDatabase(
                worker=owner(i), key=f"db{i}", title=f"Database {i}", primary_key="Name", properties=properties
            )
            for i in range(start, start + size)
        ),
    )
    # Most records in the first few databases, as on a real site: a few big databases.
    databases = list(SyncedDatabase.objects.order_by("pk").values_list("pk", flat=True)[:5])
    with _explicit_times(Record._meta.get_field("created_at"), Record._meta.get_field("updated_at")):
        _bulk(
            Record,
            (
                Record(
                    database_id=databases[i % len(databases)],
                    key=f"rec-{i:07d}",
                    sort_key=natural_sort_key(f"rec-{i:07d}"),  # as a sync stores it (bulk_create skips save())
                    properties={
                        "Name": {"type": "title", "value": f"Record {i}"},
                        "Done": {"type": "checkbox", "value": i % 2 == 0},
                    },
                    search_text=f"record {i}",
                    created_at=now - timedelta(minutes=5 * i),
                    updated_at=now - timedelta(minutes=5 * i),
                )
                for i in range(start, start + size)
            ),
        )
    new_databases = SyncedDatabase.objects.order_by("pk").values_list("pk", flat=True)[start:]
    _bulk(Tool, (Tool(worker=owner(i), key=f"tool{i}", title=f"Tool {i}") for i in range(start, start + size)))
    _bulk(
        Sync,
        (
            Sync(worker=owner(i), key=f"sync{i}", database_id=pk, last_cycle_completed_at=now)
            for i, pk in enumerate(new_databases, start=start)
        ),
    )
    _bulk(Webhook, (Webhook(worker=owner(i), key=f"hook{i}") for i in range(start, start + size)))
    _bulk(
        Pacer,
        (
            Pacer(worker=owner(i), key=f"pacer{i}", allowed_requests=3, interval_ms=1000)
            for i in range(start, start + size)
        ),
    )
    hooks = list(Webhook.objects.order_by("pk").values_list("pk", flat=True)[:20])
    with _explicit_times(WebhookEvent._meta.get_field("received_at")):
        _bulk(
            WebhookEvent,
            (
                WebhookEvent(
                    webhook_id=hooks[i % len(hooks)],
                    path=f"/webhooks/bench/hook{i % 20}/",
                    method="POST",
                    headers={"Content-Type": "application/json"},
                    body_size=120,
                    status=WebhookEvent.Status.ACCEPTED if i % 10 else WebhookEvent.Status.REJECTED,
                    reason="" if i % 10 else "bad signature",
                    received_at=now - timedelta(minutes=5 * i),
                )
                for i in range(start, start + size)
            ),
        )
    hour = now.replace(minute=0, second=0, microsecond=0)
    _bulk(
        WebhookRefusalCount,
        (
            WebhookRefusalCount(
                scope=f"bench-{i % 3:02d}/hook{i % 3}", hour=hour - timedelta(hours=i), refused=2, stored=1
            )
            for i in range(start, start + size)
        ),
    )
    statuses, kinds = list(Run.Status), list(Run.Kind)
    with _explicit_times(Run._meta.get_field("queued_at")):
        _bulk(
            Run,
            (
                Run(
                    kind=kinds[i % len(kinds)],
                    worker=owner(i),
                    target=f"tool{i % 50}",
                    trigger="admin" if i % 3 else "schedule",
                    status=statuses[i % len(statuses)],
                    attempts=1,
                    input={"n": i},
                    error="" if i % 7 else "ValueError: bad input\nmore",
                    queued_at=now - timedelta(minutes=5 * i),
                    started_at=now - timedelta(minutes=5 * i),
                    finished_at=now - timedelta(minutes=5 * i) + timedelta(seconds=2),
                )
                for i in range(start, start + size)
            ),
        )


def fill_workers(size: int, *, start: int = 0) -> None:
    """`size` more workers (numbered from `start`), on top of the few that own the other rows."""
    from connections.models import Worker

    # Named to come first: the list shows them, not the few that own every other row (its "missing
    # secrets" column reads the capabilities, webhooks and secrets of the workers shown, which the
    # code deployed bounds, not the size of any table).
    _bulk(Worker, (Worker(slug=f"a-{i:07d}", module=f"more.m{i}") for i in range(start, start + size)))


def changelists() -> list[tuple[str, str]]:
    """(label, URL) of every changelist in connections/admin/."""
    from django.contrib import admin
    from django.urls import reverse

    import connections.admin  # noqa: F401  (registers the model admins)

    found = []
    for model, model_admin in admin.site._registry.items():
        if type(model_admin).__module__.startswith("connections.admin."):
            opts = model._meta
            found.append((opts.verbose_name_plural, reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")))
    return sorted(found)


def render(client: Any, url: str) -> tuple[float, int]:
    """Seconds and SQL queries for one GET of `url`; a page that is not a 200 is an error.

    The seconds are this process's CPU time plus, on PostgreSQL, the time its queries took: the
    machine is shared, and wall time mostly measured the other processes (a page of 100 rows took
    from 420 to 1,900 ms between two runs a minute apart). SQLite runs inside this process.
    """
    with CaptureQueriesContext(connection) as queries:
        started = time.process_time()
        response = client.get(url)
        elapsed = time.process_time() - started
    if response.status_code != 200:
        raise AssertionError(f"{url} answered {response.status_code}")
    if connection.vendor != "sqlite":
        elapsed += sum(float(query["time"]) for query in queries.captured_queries)
    return elapsed, len(queries)


def _measure(client: Any, url: str, rounds: int) -> tuple[float, int]:
    render(client, url)  # warm: templates compiled, caches filled
    samples = [render(client, url) for _ in range(rounds)]
    return statistics.median(s for s, _ in samples), samples[-1][1]


def _analyze() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # As autovacuum soon would after such inserts (PostgreSQL 13+ vacuums after inserts too):
            # the visibility map it sets lets COUNT(*) read an index instead of every row.
            cursor.execute("VACUUM (ANALYZE)")


def run(ctx: Context) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test Client's host ("testserver") allowed, as in the tests
    size, rounds = ctx.scale(100_000, 2_000), ctx.scale(9, 3)
    user = get_user_model().objects.create_superuser("bench", "bench@example.test", None)
    client = Client()
    client.force_login(user)
    pages = changelists()
    workers_url = next(url for _, url in pages if url.endswith("/worker/"))
    others = [url for _, url in pages if url != workers_url]
    empty = {url: _measure(client, url, rounds) for _, url in pages}
    # One full page (100 rows): what rendering rows costs, whatever the table's size.
    fill(PAGE)
    fill_workers(PAGE)
    _analyze()
    page = {url: _measure(client, url, rounds) for _, url in pages}
    started = time.monotonic()
    fill(size - PAGE, start=PAGE)
    ctx.note(f"filled {size:,} rows per table in {time.monotonic() - started:.0f} s")
    _analyze()
    full = {url: _measure(client, url, rounds) for url in others}
    fill_workers(size - PAGE, start=PAGE)
    _analyze()
    full[workers_url] = _measure(client, workers_url, rounds)
    for label, url in pages:
        (base, base_queries), (one, one_queries), (seconds, queries) = empty[url], page[url], full[url]
        ctx.figure(
            f"admin {label} list at {size:,} rows",
            ratio=seconds / base,
            baseline=f"the empty list ({base * 1000:.0f} ms)",
            target=3,
            detail=(
                f"{seconds * 1000:.0f} ms; at {PAGE} rows (one page) {one * 1000:.0f} ms, so {seconds / one:.2f}x "
                f"from {PAGE} to {size:,} rows; SQL queries empty/{PAGE}/{size:,}: "
                f"{base_queries}/{one_queries}/{queries}"
            ),
            ms_empty=round(base * 1000, 1),
            ms_page=round(one * 1000, 1),
            ms_full=round(seconds * 1000, 1),
            queries_empty=base_queries,
            queries_page=one_queries,
            queries_full=queries,
        )
