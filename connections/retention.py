"""Retention: finished runs and webhook events older than their retention period are deleted, in batches.

Each DELETE removes at most `WORKERS_PURGE_BATCH_SIZE` rows, chosen by primary key, and commits on
its own, so the tables are never locked for long and a purge that stops half-way loses nothing
that should stay. Unfinished runs (queued, running, retrying) are never purged, whatever their age,
nor the events such runs still need.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from .conf import app_settings
from .models import Run, WebhookEvent, WebhookRefusalCount

_UNFINISHED = [Run.Status.QUEUED, Run.Status.RUNNING, Run.Status.RETRYING]


def _delete_in_batches(queryset: QuerySet, batch: int) -> int:
    model: type[Model] = queryset.model
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        with transaction.atomic():
            # only("pk"): the rows are not loaded whole (a run's log and result may be hundreds of KB);
            # Django still nulls what points at them (a sync's lock holder, a run's event) first.
            _, per_model = model.objects.filter(pk__in=ids).only("pk").delete()
        deleted += per_model.get(model._meta.label, 0)
        if len(ids) < batch:
            return deleted


def old_runs() -> QuerySet[Run]:
    """Finished runs that ended before the run retention period."""
    cutoff = timezone.now() - timedelta(days=app_settings.RUN_RETENTION_DAYS)
    return Run.objects.filter(status__in=Run.FINISHED).filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, queued_at__lt=cutoff)
    )


def old_webhook_events() -> QuerySet[WebhookEvent]:
    """Events received before the webhook retention period whose runs (if any) are all finished."""
    # Never sooner than the signature tolerance: an accepted event's digest is what refuses its replays.
    keep = max(timedelta(days=app_settings.WEBHOOK_RETENTION_DAYS), timedelta(seconds=app_settings.WEBHOOK_TOLERANCE))
    cutoff = timezone.now() - keep
    return WebhookEvent.objects.filter(received_at__lt=cutoff).exclude(runs__status__in=_UNFINISHED)


def purge(batch: int | None = None) -> dict[str, int]:
    """Delete what is past its retention period; returns the counts deleted per kind."""
    batch = batch or app_settings.PURGE_BATCH_SIZE
    # Runs first: an event whose runs are gone is then free to go too.
    counts = {"runs": _delete_in_batches(old_runs(), batch)}
    counts["webhook_events"] = _delete_in_batches(old_webhook_events(), batch)
    cutoff = timezone.now() - timedelta(days=app_settings.WEBHOOK_RETENTION_DAYS)
    counts["refusal_counts"] = _delete_in_batches(WebhookRefusalCount.objects.filter(hour__lt=cutoff), batch)
    return counts
