"""Retention: old finished runs and webhook events are purged in batches by the beat task; the rest stays."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Run, Sync, WebhookEvent, Worker

from .runner.conftest import wait_until

OLD = 40  # days: past the default retention of 30


def make_runs(worker: Worker, count: int, *, status: str = "succeeded", days_ago: float = OLD) -> list[int]:
    """`count` runs that ended `days_ago` days ago (bulk: the auto timestamps are rewritten afterwards)."""
    runs = Run.objects.bulk_create(
        [Run(kind="tool", worker=worker, target="bulk", status=status, log="x" * 200) for _ in range(count)],
        batch_size=1000,
    )
    ids = [run.pk for run in runs]
    when = timezone.now() - timedelta(days=days_ago)
    finished = when if status in Run.FINISHED else None
    for start in range(0, len(ids), 500):
        Run.objects.filter(pk__in=ids[start : start + 500]).update(queued_at=when, finished_at=finished)
    return ids


def make_events(count: int, *, days_ago: float = OLD) -> list[int]:
    events = WebhookEvent.objects.bulk_create(
        [WebhookEvent(path="/webhooks/x/y/", method="POST", body=b"{}" * 100, status="accepted") for _ in range(count)],
        batch_size=1000,
    )
    ids = [event.pk for event in events]
    when = timezone.now() - timedelta(days=days_ago)
    for start in range(0, len(ids), 500):
        WebhookEvent.objects.filter(pk__in=ids[start : start + 500]).update(received_at=when)
    return ids


PURGE_TASK = "connections.tasks.purge_old_records"


@pytest.mark.celery
def test_the_beat_task_purges_old_runs_and_events_and_keeps_the_rest(site, celery_worker, settings):
    from workers_site.celery import app

    worker = Worker.objects.get(slug="sandbox")
    make_runs(worker, 10_000)
    make_events(10_000)
    recent_runs = set(make_runs(worker, 5, days_ago=1))
    recent_events = set(make_events(5, days_ago=1))
    unfinished = set(make_runs(worker, 2, status="running")) | set(make_runs(worker, 1, status="queued"))
    # An old event whose runs are still unfinished is needed by them: kept.
    needed = make_events(1)[0]
    Run.objects.filter(pk__in=unfinished).update(webhook_event_id=needed)
    # A sync still naming an old finished run as its lock holder.
    holder = make_runs(worker, 1)[0]
    Sync.objects.filter(worker=worker).update(running_run_id=holder)

    # Sent by name to the real worker, as beat sends it.
    app.send_task(PURGE_TASK)

    expected_runs = recent_runs | unfinished
    wait_until(
        lambda: (
            set(Run.objects.values_list("pk", flat=True)) == expected_runs
            and set(WebhookEvent.objects.values_list("pk", flat=True)) == recent_events | {needed}
        ),
        timeout=120,
        what="old runs and events to be purged",
    )
    assert not Sync.objects.filter(running_run__isnull=False).exists()
    assert any(entry["task"] == PURGE_TASK for entry in settings.CELERY_BEAT_SCHEDULE.values())


def test_each_delete_statement_removes_at_most_a_batch(transactional_db, settings):
    from connections.models import WebhookRefusalCount
    from connections.retention import purge

    settings.WORKERS_PURGE_BATCH_SIZE = 100
    worker = Worker.objects.create(slug="bulk", module="tests.none")
    make_runs(worker, 1_000)
    WebhookRefusalCount.objects.create(scope="", hour=timezone.now() - timedelta(days=OLD), refused=9)
    kept = WebhookRefusalCount.objects.create(scope="", hour=timezone.now(), refused=1)

    with CaptureQueriesContext(connection) as queries:
        counts = purge()

    assert counts["runs"] == 1_000 and not Run.objects.exists()
    assert list(WebhookRefusalCount.objects.all()) == [kept]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "connections_run"')]
    assert len(deletes) == 10
    assert all(len(re.findall(r"\d+", sql.split(" IN ", 1)[1])) <= 100 for sql in deletes)
