"""`/metrics` in the Prometheus text format, computed from the database when it is scraped.

The web server's processes, every Celery worker and beat run on many machines; a scrape reaches
one web process. In-process counters would show that one process's share, so every value here is
read from the database, which all of them share:

- gauges counted at scrape time: runs by kind and status, connections by health, seconds until
  each token expires, webhook events by status (what retention keeps of runs and events);
- gauge histograms of run duration and queue wait over the runs finished (or started) in the last
  WORKERS_METRICS_WINDOW seconds: one bounded aggregate query each, whatever the table's size;
- counters that must outlive processes and retention (token refreshes by outcome, sync records
  written by operation): `MetricCounter` rows, added to by `count()` after the counted work commits.

One scrape makes a fixed number of queries (eight), at ten runs as at a hundred thousand.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .conf import app_settings
from .models import Connection, Health, MetricCounter, OAuthCapability, OAuthCapabilityQuerySet, Run, WebhookEvent

logger = logging.getLogger("connections.metrics")

# Counter names and every label value they take (a scrape shows 0 for one never counted).
TOKEN_REFRESHES = "token_refreshes"
REFRESH_OUTCOMES = ("succeeded", "failed", "refused")
SYNC_RECORDS_WRITTEN = "sync_records_written"
RECORD_OPERATIONS = ("created", "updated", "deleted")
_COUNTERS = {
    TOKEN_REFRESHES: (
        "outcome",
        REFRESH_OUTCOMES,
        "Token refreshes sent to providers, by outcome (refused: the provider refused the refresh token, "
        "the connection needs re-authorization; failed: any other error).",
    ),
    SYNC_RECORDS_WRITTEN: ("operation", RECORD_OPERATIONS, "Records written by sync pages, by operation."),
}

DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
QUEUE_WAIT_BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


def count(name: str, label: str, amount: int = 1) -> None:
    """Add `amount` to a database counter once the surrounding transaction commits (now, outside one).

    After the commit, so a rolled-back page or refresh is not counted and the counter's row is not
    locked for the rest of the counted work's transaction (every worker updates the same few rows).
    A failure is logged and dropped: a metric must never fail the work it counts.
    """
    if amount <= 0:
        return
    transaction.on_commit(lambda: _add(name, label, amount))


def _add(name: str, label: str, amount: int) -> None:
    try:
        with transaction.atomic():
            if MetricCounter.objects.filter(name=name, label=label).update(value=F("value") + amount):
                return
            try:
                with transaction.atomic():
                    MetricCounter.objects.create(name=name, label=label, value=amount)
            except IntegrityError:  # another process created the row meanwhile
                MetricCounter.objects.filter(name=name, label=label).update(value=F("value") + amount)
    except DatabaseError as exc:
        logger.warning("Could not add %s to the %s{%s} counter: %s", amount, name, label, exc)


def _seconds(value: timedelta | float | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # a backend without a duration type sums microseconds


def _histograms(
    name: str, documentation: str, since_field: str, start: str, end: str, buckets: tuple[float, ...]
) -> GaugeHistogramMetricFamily:
    """One aggregate query over the window: a count per bucket, per run kind, computed by the database."""
    family = GaugeHistogramMetricFamily(name, documentation, labels=["kind"])
    since = timezone.now() - timedelta(seconds=app_settings.METRICS_WINDOW)
    span = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    aggregates: dict[str, Any] = {
        f"le_{index}": Count("pk", filter=Q(span__lte=timedelta(seconds=bound))) for index, bound in enumerate(buckets)
    }
    rows = (
        Run.objects.filter(**{f"{since_field}__gte": since, f"{start}__isnull": False, f"{end}__isnull": False})
        .annotate(span=span)
        .values("kind")
        .order_by("kind")
        .annotate(total=Count("pk"), span_sum=Sum("span"), **aggregates)
    )
    for row in rows:
        cumulative = [(str(bound), float(row[f"le_{index}"])) for index, bound in enumerate(buckets)]
        cumulative.append(("+Inf", float(row["total"])))
        family.add_metric([row["kind"]], cumulative, _seconds(row["span_sum"]))
    return family


class DatabaseCollector:
    """A prometheus-client collector whose every sample is read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield self._runs()
        yield _histograms(
            "workers_run_duration_seconds",
            "Run duration (first start to end) of the runs finished in the last WORKERS_METRICS_WINDOW seconds.",
            "finished_at",
            "started_at",
            "finished_at",
            DURATION_BUCKETS,
        )
        yield _histograms(
            "workers_run_queue_wait_seconds",
            "Queue wait (queued to first start) of the runs started in the last WORKERS_METRICS_WINDOW seconds.",
            "started_at",
            "queued_at",
            "started_at",
            QUEUE_WAIT_BUCKETS,
        )
        yield self._connections()
        yield self._expiry()
        yield self._webhook_events()
        yield from self._counters()

    def _runs(self) -> Metric:
        family = GaugeMetricFamily(
            "workers_runs",
            "Runs in the database (what retention keeps), by kind and status.",
            labels=["kind", "status"],
        )
        found = {
            (row["kind"], row["status"]): row["n"]
            for row in Run.objects.order_by().values("kind", "status").annotate(n=Count("pk"))
        }
        for kind in Run.Kind.values:
            for status in Run.Status.values:
                family.add_metric([kind, status], found.get((kind, status), 0))
        return family

    def _connections(self) -> Metric:
        family = GaugeMetricFamily(
            "workers_connections",
            "OAuth capabilities of active workers by connection health, as the admin shows it.",
            labels=["health"],
        )
        states = list(Health.values)
        condition = OAuthCapabilityQuerySet.health_condition
        counts = OAuthCapability.objects.filter(is_active=True, worker__is_active=True).aggregate(
            **{state: Count("pk", filter=condition(state)) for state in states}
        )
        for state in states:
            family.add_metric([state], counts[state] or 0)
        return family

    def _expiry(self) -> Metric:
        family = GaugeMetricFamily(
            "workers_token_expires_in_seconds",
            "Seconds until each connected capability's access token expires (negative: expired).",
            labels=["worker", "capability"],
        )
        now = timezone.now()
        rows = (
            Connection.objects.filter(
                status__in=[Connection.Status.CONNECTED, Connection.Status.REFRESH_FAILING],
                expires_at__isnull=False,
                capability__is_active=True,
            )
            .order_by("capability__worker__slug", "capability__key")
            .values_list("capability__worker__slug", "capability__key", "expires_at")
        )
        for worker, key, expires_at in rows:
            family.add_metric([worker, key], (expires_at - now).total_seconds())
        return family

    def _webhook_events(self) -> Metric:
        family = GaugeMetricFamily(
            "workers_webhook_events",
            "Webhook requests stored (what retention keeps), by status.",
            labels=["status"],
        )
        found = dict(WebhookEvent.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in WebhookEvent.Status.values:
            family.add_metric([status], found.get(status, 0))
        return family

    def _counters(self) -> Iterator[Metric]:
        values = {
            (name, label): value for name, label, value in MetricCounter.objects.values_list("name", "label", "value")
        }
        for name, (label_name, labels, documentation) in _COUNTERS.items():
            family = CounterMetricFamily(f"workers_{name}", documentation, labels=[label_name])
            for label in labels:
                family.add_metric([label], values.get((name, label), 0))
            yield family


def exposition() -> bytes:
    """The text a scrape gets (Prometheus text format 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())  # type: ignore[arg-type]
    return generate_latest(registry)


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """404 while METRICS_TOKEN is unset (the endpoint does not exist); 401 without that bearer token."""
    token = app_settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    if not _authorized(request, token):
        return HttpResponse(
            "A bearer token is required (METRICS_TOKEN).\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    try:
        body = exposition()
    except DatabaseError:
        return HttpResponse("The database does not answer.\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
