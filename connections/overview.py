"""The admin's overview: "is everything healthy?" in one page, at a constant number of queries.

Every list is cut to its newest (or oldest, for waiting runs) `limit` rows and comes with its
total, so the page costs the same at 10 runs and at 100,000; each query filters on an indexed
column (see the indexes on Run and WebhookRefusalCount). A section is built only for a user who
may view its model: the overview never shows what the model pages would not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Subquery, Sum
from django.utils import timezone

from .models import Connection, Health, OAuthCapability, OAuthCapabilityQuerySet, Run, Sync, WebhookRefusalCount
from .sdk.worker import parse_schedule
from .text import describe_time

LIMIT = 10
ENCRYPTED_FIELDS = [
    "client_secret_literal",
    "connection__access_token",
    "connection__refresh_token",
    "connection__extra",
]
# The status badge's background per health state: presentation, read by the overview and the
# capability pages (connections/admin/oauth.py), kept apart from the rule that decides the state.
BADGE_COLOURS = {
    Health.NOT_CONNECTED: "#6b7280",
    Health.CONNECTED: "#1a7f37",
    Health.EXPIRING: "#b54708",
    Health.REFRESH_FAILING: "#b42318",
    Health.NEEDS_REAUTH: "#b42318",
}
# Waiting longer than this with no worker taking the run is worth a look (and a red figure).
LONG_WAIT = timedelta(minutes=2)


@dataclass
class ConnectionRow:
    capability: OAuthCapability
    state: str

    @property
    def label(self) -> str:
        return str(Health(self.state).label)

    @property
    def colour(self) -> str:
        return BADGE_COLOURS[self.state]

    @property
    def healthy(self) -> bool:
        return self.state == Health.CONNECTED


@dataclass
class SyncRow:
    sync: Sync
    last_run: Run | None
    next_run: str


@dataclass
class Section:
    """One part of the page: up to `limit` rows and how many there are in all."""

    rows: list[Any] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)


@dataclass
class Overview:
    now: datetime
    since: datetime  # start of the "last day" window of failures and refusals
    connections: Section | None = None
    connection_counts: list[tuple[str, str, str, int]] = field(default_factory=list)  # state, label, colour, n
    syncs: Section | None = None
    failed_runs: Section | None = None
    queued_runs: Section | None = None
    refusals: Section | None = None  # rows: {"scope": ..., "refused": n}

    @property
    def since_param(self) -> str:
        """`since` as the admin's changelist filters take it (`?hour__gte=`), in the site's time zone."""
        return timezone.localtime(self.since).isoformat(sep=" ")

    @property
    def empty(self) -> bool:
        return all(s is None for s in (self.connections, self.syncs, self.failed_runs, self.queued_runs, self.refusals))

    @property
    def problems(self) -> int:
        """Unhealthy connections, failed runs of the last day, runs waiting long: 0 means all healthy.

        Refusals are shown, not counted: scanners knocking on webhook URLs are not a fault here."""
        count = 0
        if self.connections is not None:
            count += sum(n for state, _, _, n in self.connection_counts if state != Health.CONNECTED)
        if self.failed_runs is not None:
            count += self.failed_runs.total
        if self.queued_runs is not None:
            count += sum(1 for run in self.queued_runs.rows if self.now - run.queued_at > LONG_WAIT)
        return count


def _can_view(user: Any, model_name: str) -> bool:
    return user.has_perm(f"connections.view_{model_name}") or user.has_perm(f"connections.change_{model_name}")


def next_run(sync: Sync, now: datetime) -> str:
    """When beat starts this sync next, as the page shows it."""
    if not sync.is_active:
        return "inactive"
    try:
        kind, _value = parse_schedule(sync.schedule)
    except ValueError:
        return "invalid schedule"
    if kind == "manual":
        return "manual (Run now only)"
    task = sync.periodic_task
    if task is None or not task.enabled:
        return "not scheduled (deploy again)"
    try:
        remaining = task.schedule.remaining_estimate(task.last_run_at or task.date_changed or now)
    except (AttributeError, TypeError, ValueError):
        return sync.schedule
    when = now + max(remaining, timedelta(0))
    return describe_time(when)


def _connections(overview: Overview, limit: int) -> None:
    condition = OAuthCapabilityQuerySet.health_condition
    capabilities = OAuthCapability.objects.filter(is_active=True)
    counts = capabilities.aggregate(**{state: Count("pk", filter=condition(state)) for state in Health.values})
    overview.connection_counts = [
        (state, str(Health(state).label), BADGE_COLOURS[state], counts[state]) for state in Health.values
    ]
    # Unhealthy first: the rows the page is for; healthy ones fill what is left of the limit.
    # No token or secret is decrypted for this page (nor can a key problem take the index down).
    listed = (
        capabilities.select_related("worker", "connection").defer(*ENCRYPTED_FIELDS).order_by("worker__slug", "key")
    )
    healthy = condition(Health.CONNECTED)
    caps = list(listed.exclude(healthy)[:limit])
    if len(caps) < limit:
        caps += list(listed.filter(healthy)[: limit - len(caps)])
    # `health()` on each row is the rule `health_condition()` applies in the query.
    rows = [ConnectionRow(cap, Connection.health_of(getattr(cap, "connection", None))) for cap in caps]
    overview.connections = Section(rows, sum(counts.values()))


def _syncs(overview: Overview, limit: int) -> None:
    latest = Run.objects.filter(sync=OuterRef("pk")).order_by("-queued_at").values("pk")[:1]
    syncs = list(
        Sync.objects.filter(is_active=True)
        .select_related("worker", "database", "periodic_task__interval", "periodic_task__crontab")
        .annotate(last_run_id=Subquery(latest))
        .order_by("worker__slug", "key")[:limit]
    )
    runs = Run.objects.in_bulk([s.last_run_id for s in syncs if s.last_run_id])
    rows = [SyncRow(s, runs.get(s.last_run_id), next_run(s, overview.now)) for s in syncs]
    overview.syncs = Section(rows, Sync.objects.filter(is_active=True).count())


def _runs(overview: Overview, limit: int) -> None:
    failed = Run.objects.filter(status=Run.Status.FAILED, finished_at__gte=overview.since)
    rows = list(failed.select_related("worker").order_by("-finished_at")[:limit])
    for failure in rows:
        failure.error_line = (failure.error.strip().splitlines() or [""])[0]  # the page's one line per run
    overview.failed_runs = Section(rows, failed.count())
    queued = Run.objects.filter(status=Run.Status.QUEUED)
    rows = list(queued.select_related("worker").order_by("queued_at")[:limit])  # the longest wait first
    overview.queued_runs = Section(rows, queued.count())


def _refusals(overview: Overview, limit: int) -> None:
    recent = WebhookRefusalCount.objects.filter(hour__gte=overview.since, refused__gt=0)
    rows = list(recent.values("scope").annotate(refused=Sum("refused")).order_by("-refused", "scope")[:limit])
    total = recent.aggregate(n=Sum("refused"))["n"] or 0
    overview.refusals = Section(rows, total)


def build_overview(user: Any, *, limit: int = LIMIT, now: datetime | None = None) -> Overview:
    """What `user` may see of the site's health: connections, syncs, failed and waiting runs, refusals."""
    now = now or timezone.now()
    # Refusals are counted per clock hour: the window starts on the hour a day ago.
    since = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    overview = Overview(now=now, since=since)
    if _can_view(user, "oauthcapability"):
        _connections(overview, limit)
    if _can_view(user, "sync"):
        _syncs(overview, limit)
    if _can_view(user, "run"):
        _runs(overview, limit)
    if _can_view(user, "webhookrefusalcount"):
        _refusals(overview, limit)
    return overview
