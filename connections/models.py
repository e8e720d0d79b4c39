"""Models: workers and what they declare, secrets, OAuth connections, runs, and synced databases."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .conf import app_settings
from .fields import EncryptedJSONField, EncryptedTextField
from .text import natural_sort_key


class Worker(models.Model):
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    module = models.CharField(_("module"), max_length=255, help_text=_("The dotted module that defines it."))
    is_active = models.BooleanField(_("active"), default=True)
    deployed_at = models.DateTimeField(_("last deployed"), null=True, blank=True)
    # What a process compares the code it imported with: a run on other code is flagged (see Run).
    code_fingerprint = models.CharField(
        _("code fingerprint"),
        max_length=64,
        blank=True,
        help_text=_("A hash of the worker module's source files, as the last deploy read them."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("worker")
        verbose_name_plural = _("workers")

    def __str__(self) -> str:
        return self.slug


class Secret(models.Model):
    """A worker's secret (`worker.env("NAME")`); the value is encrypted and never displayed."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(_("name"), max_length=200)
    value = EncryptedTextField(_("value"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last set"), auto_now=True)

    class Meta:
        ordering = ["worker__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["worker", "name"], name="unique_secret_per_worker")]
        verbose_name = _("secret")
        verbose_name_plural = _("secrets")

    def __str__(self) -> str:
        return f"{self.worker.slug}:{self.name}"


class Health(models.TextChoices):
    """A connection's health as the admin and `workers oauth status` show it.

    `Connection.health()` decides it in Python and `OAuthCapabilityQuerySet.in_health()` as a
    query; change both together (tests/oauth/test_health.py checks they agree).
    """

    NOT_CONNECTED = "not_connected", _("not connected")
    CONNECTED = "connected", _("connected")
    EXPIRING = "expiring", _("expiring")
    REFRESH_FAILING = "refresh_failing", _("refresh failing")
    NEEDS_REAUTH = "needs_reauth", _("needs reauthorization")


class OAuthCapabilityQuerySet(models.QuerySet):
    def in_health(self, state: str) -> OAuthCapabilityQuerySet:
        """Capabilities whose connection is in `state`, as `Connection.health()` decides it."""
        return self.filter(self.health_condition(state))

    @staticmethod
    def health_condition(state: str) -> models.Q:
        """`in_health`'s condition on a capability, also for counting every state in one query."""
        S = Connection.Status
        now = timezone.now()

        def q(**lookups: object) -> models.Q:
            return models.Q(**{f"connection__{name}": value for name, value in lookups.items()})

        expiring = q(status=S.CONNECTED, expires_at__lte=now + timedelta(seconds=app_settings.EXPIRING_WITHIN))
        dead = q(status=S.CONNECTED, expires_at__lte=now, has_refresh_token=False)
        conditions = {
            Health.NOT_CONNECTED: q(isnull=True) | q(status=S.NOT_CONNECTED),
            Health.CONNECTED: q(status=S.CONNECTED) & ~expiring,
            Health.EXPIRING: expiring & ~dead,
            Health.REFRESH_FAILING: q(status=S.REFRESH_FAILING),
            Health.NEEDS_REAUTH: q(status=S.NEEDS_REAUTH) | dead,
        }
        if state not in conditions:
            raise ValueError(f"unknown health state {state!r}")
        return conditions[state]


class OAuthCapability(models.Model):
    """`worker.oauth(...)` as last deployed. The code is the source of truth; this is its record."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="capabilities")
    key = models.CharField(_("key"), max_length=100)
    name = models.CharField(_("name"), max_length=200)
    provider = models.CharField(_("provider preset"), max_length=50, blank=True)
    authorization_endpoint = models.URLField(_("authorization endpoint"), max_length=1000)
    token_endpoint = models.URLField(_("token endpoint"), max_length=1000)
    revocation_endpoint = models.URLField(_("revocation endpoint"), max_length=1000, blank=True)
    scope = models.CharField(_("scope"), max_length=2000, blank=True)
    # {"secret": "NAME"} for worker.env("NAME"), or {"value": "..."} for a literal client id.
    client_id = models.JSONField(_("client id"), default=dict)
    # Only the secret's name is kept; a literal client secret in code is stored encrypted.
    client_secret_ref = models.CharField(_("client secret (secret name)"), max_length=200, blank=True)
    client_secret_literal = EncryptedTextField(_("client secret (literal)"), blank=True, default="")
    authorization_params = models.JSONField(_("authorization params"), default=dict, blank=True)
    access_token_expire_ms = models.BigIntegerField(_("default token lifetime (ms)"), null=True, blank=True)
    use_pkce = models.BooleanField(_("PKCE"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = OAuthCapabilityQuerySet.as_manager()

    class Meta:
        ordering = ["worker__slug", "key"]
        constraints = [models.UniqueConstraint(fields=["worker", "key"], name="unique_capability_per_worker")]
        permissions = [("connect_oauthcapability", "Can connect, reconnect and disconnect OAuth capabilities")]
        verbose_name = _("OAuth capability")
        verbose_name_plural = _("OAuth capabilities")

    def __str__(self) -> str:
        return f"{self.worker.slug}:{self.key}"

    def secret_names(self) -> list[str]:
        names = []
        if self.client_id.get("secret"):
            names.append(self.client_id["secret"])
        if self.client_secret_ref:
            names.append(self.client_secret_ref)
        return names


class ConnectionQuerySet(models.QuerySet):
    def expiring(self, within: timedelta) -> ConnectionQuerySet:
        """Connected, refreshable, and expiring before now + within."""
        return self.filter(
            status__in=[Connection.Status.CONNECTED, Connection.Status.REFRESH_FAILING],
            has_refresh_token=True,
            expires_at__isnull=False,
            expires_at__lte=timezone.now() + within,
            capability__is_active=True,
        )

    def idle(self, since: timedelta) -> ConnectionQuerySet:
        """Connected with a refresh token that has not been used for `since`."""
        cutoff = timezone.now() - since
        return self.filter(
            status=Connection.Status.CONNECTED,
            has_refresh_token=True,
            capability__is_active=True,
        ).filter(
            models.Q(last_refreshed_at__lt=cutoff) | models.Q(last_refreshed_at__isnull=True, connected_at__lt=cutoff)
        )


@functools.lru_cache(maxsize=8)
def _seconds(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


class TokenLifetime:
    """Freshness rules of a stored token, shared by `Connection` and the hot path's `TokenRow`.

    Needs `status`, `access_token`, `expires_at`, `connected_at` and `last_refreshed_at`.
    """

    status: str
    access_token: str
    expires_at: datetime | None
    connected_at: datetime | None
    last_refreshed_at: datetime | None

    def within_lifetime(self, window: timedelta) -> timedelta:
        """`window`, but never more than half the token's lifetime, so short-lived tokens are not
        refreshed (or reported expiring) the moment they are issued."""
        issued = self.last_refreshed_at or self.connected_at
        if self.expires_at and issued:
            return min(window, (self.expires_at - issued) / 2)
        return window

    def is_fresh(self, valid_for: timedelta | None = None) -> bool:
        """True when the stored token stays valid for `valid_for` (default: the refresh margin)."""
        if not self.access_token or self.status in _UNUSABLE:
            return False
        if self.expires_at is None:  # the provider gave no lifetime: valid until it answers 401
            return True
        window = _seconds(app_settings.TOKEN_REFRESH_MARGIN) if valid_for is None else valid_for
        return self.expires_at - self.within_lifetime(window) > timezone.now()


class Connection(TokenLifetime, models.Model):
    """The tokens of one capability. Every token is encrypted; none is ever displayed."""

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", _("not connected")
        CONNECTED = "connected", _("connected")
        REFRESH_FAILING = "refresh_failing", _("refresh failing")
        NEEDS_REAUTH = "needs_reauth", _("needs reauthorization")

    capability = models.OneToOneField(OAuthCapability, on_delete=models.CASCADE, related_name="connection")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED)
    access_token = EncryptedTextField(_("access token"), blank=True, default="")
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    # Kept in clear beside the encrypted token so queries need not decrypt.
    has_refresh_token = models.BooleanField(_("has refresh token"), default=False)
    token_type = models.CharField(_("token type"), max_length=40, blank=True)
    granted_scope = models.CharField(_("granted scope"), max_length=2000, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, db_index=True)
    extra = EncryptedJSONField(_("rest of the token response"), null=True, blank=True)
    connected_at = models.DateTimeField(_("connected"), null=True, blank=True)
    last_refreshed_at = models.DateTimeField(_("last refresh"), null=True, blank=True)
    refresh_count = models.PositiveIntegerField(_("refreshes"), default=0)
    failure_count = models.PositiveIntegerField(_("consecutive failures"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")

    def __str__(self) -> str:
        return f"{self.capability} ({self.get_status_display()})"

    def health(self) -> str:
        """A `Health` value; `expiring` is a connected token within the background refresh window."""
        if self.status == Connection.Status.NOT_CONNECTED:
            return Health.NOT_CONNECTED
        if self.status in (Connection.Status.NEEDS_REAUTH, Connection.Status.REFRESH_FAILING):
            return Health(self.status)
        if self.expires_at is not None:
            now = timezone.now()
            if self.expires_at <= now:
                # Refreshed on the next access_token(); without a refresh token only a reconnect helps.
                return Health.EXPIRING if self.has_refresh_token else Health.NEEDS_REAUTH
            if self.expires_at <= now + timedelta(seconds=app_settings.EXPIRING_WITHIN):
                return Health.EXPIRING
        return Health.CONNECTED

    @staticmethod
    def health_of(conn: Connection | None) -> str:
        """`conn.health()`, or not connected for a capability that has no connection row."""
        return Health.NOT_CONNECTED if conn is None else conn.health()

    def forget_tokens(self) -> None:
        """Back to not connected, every token and what came with it gone (the caller holds the refresh lock;
        revoking at the provider first is `oauth.tokens.disconnect`)."""
        self.status = Connection.Status.NOT_CONNECTED
        self.access_token = ""
        self.refresh_token = ""
        self.has_refresh_token = False
        self.token_type = ""
        self.granted_scope = ""
        self.expires_at = None
        self.extra = None
        self.failure_count = 0
        self.last_error = ""
        self.last_error_at = None
        self.save()


# Statuses whose stored token is never handed out (TokenLifetime.is_fresh, on every access_token()).
_UNUSABLE = frozenset((Connection.Status.NOT_CONNECTED, Connection.Status.NEEDS_REAUTH))


class AuthorizationAttempt(models.Model):
    """One run of the authorization-code flow, from the authorization URL to the callback."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    class Origin(models.TextChoices):
        ADMIN = "admin", _("admin")
        CLI = "cli", _("command line")

    capability = models.ForeignKey(OAuthCapability, on_delete=models.CASCADE, related_name="attempts")
    # Only a hash of `state` is stored: the database alone cannot complete a flow.
    state_hash = models.CharField(max_length=64, unique=True)
    code_verifier = EncryptedTextField(blank=True, default="")
    origin = models.CharField(max_length=10, choices=Origin.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("authorization attempt")
        verbose_name_plural = _("authorization attempts")

    def __str__(self) -> str:
        return f"{self.capability} {self.status}"


class SyncedDatabase(models.Model):
    """`worker.database(...)`: the table a sync fills."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="databases")
    key = models.CharField(_("key"), max_length=100)
    title = models.CharField(_("title"), max_length=200)
    primary_key = models.CharField(_("primary key property"), max_length=200)
    properties = models.JSONField(_("properties"), default=dict)
    # The property names in the order the code declares them: jsonb keeps no key order, and records
    # are stored as canonical JSON (sorted keys), so neither `properties` nor a record can say it.
    property_order = models.JSONField(default=list, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["worker__slug", "key"]
        constraints = [models.UniqueConstraint(fields=["worker", "key"], name="unique_database_per_worker")]
        verbose_name = _("database")
        verbose_name_plural = _("databases")

    def __str__(self) -> str:
        return self.title or self.key

    def in_declared_order(self, values: dict[str, Any]) -> list[tuple[str, Any]]:
        """`values` (by property name) in the order the code declares the properties, any other last."""
        order = [name for name in self.property_order if name in values]
        listed = set(order)
        return [(name, values[name]) for name in order] + [
            (name, value) for name, value in values.items() if name not in listed
        ]


class Record(models.Model):
    # No index of its own: unique_record_key and record_natural_order both begin with it, and a
    # third index to update cost a sync's first run a tenth of its writing on SQLite.
    database = models.ForeignKey(SyncedDatabase, on_delete=models.CASCADE, related_name="records", db_index=False)
    key = models.CharField(_("key"), max_length=500)
    # `key` with its numbers padded (text.natural_sort_key): the records list sorts ids 2 before 10.
    sort_key = models.CharField(max_length=1000, blank=True, default="", editable=False)
    properties = models.JSONField(_("properties"), default=dict)
    # Text of the property values, for admin search without JSON operators.
    search_text = models.TextField(blank=True, default="")
    # A hash of the properties (see runner/syncs.py `content_digest`): a page compares it alone, so an
    # unchanged record is neither loaded whole nor written.
    digest = models.CharField(max_length=32, blank=True, default="")
    # The cycle that last wrote this record. A replace-mode cycle's unchanged records are listed in
    # SyncSeenKeys instead of rewritten; records in neither are deleted at the cycle's end.
    cycle = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["database", "sort_key", "key"]
        constraints = [models.UniqueConstraint(fields=["database", "key"], name="unique_record_key")]
        indexes = [models.Index(fields=["database", "sort_key"], name="record_natural_order")]
        verbose_name = _("record")
        verbose_name_plural = _("records")

    def __str__(self) -> str:
        return self.key

    def save(self, *args: Any, **kwargs: Any) -> None:
        # bulk_create skips save(): apply_page sets sort_key itself.
        self.sort_key = natural_sort_key(self.key)
        super().save(*args, **kwargs)


class Tool(models.Model):
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="tools")
    key = models.CharField(_("key"), max_length=100)
    title = models.CharField(_("title"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    input_schema = models.JSONField(_("input schema"), default=dict)
    output_schema = models.JSONField(_("output schema"), null=True, blank=True)
    hints = models.JSONField(_("hints"), default=dict, blank=True)
    time_limit = models.FloatField(
        _("time limit"), null=True, blank=True, help_text=_("Seconds; empty: WORKERS_TOOL_TIME_LIMIT.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["worker__slug", "key"]
        constraints = [models.UniqueConstraint(fields=["worker", "key"], name="unique_tool_per_worker")]
        permissions = [("run_tool", "Can run tools")]
        verbose_name = _("tool")
        verbose_name_plural = _("tools")

    def __str__(self) -> str:
        return f"{self.worker.slug}:{self.key}"


class Sync(models.Model):
    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", _("incremental")
        REPLACE = "replace", _("replace")

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="syncs")
    key = models.CharField(_("key"), max_length=100)
    database = models.ForeignKey(SyncedDatabase, on_delete=models.PROTECT, related_name="syncs")
    schedule = models.CharField(_("schedule"), max_length=100, default="continuous")
    mode = models.CharField(_("mode"), max_length=20, choices=Mode.choices, default=Mode.INCREMENTAL)
    time_limit = models.FloatField(
        _("time limit per page"), null=True, blank=True, help_text=_("Seconds; empty: WORKERS_SYNC_PAGE_TIME_LIMIT.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Committed with each page: where the next page (or the next cycle) starts.
    state = models.JSONField(_("state"), null=True, blank=True)
    # True while a cycle is between its first and last page; a new run then resumes it.
    cycle_in_progress = models.BooleanField(default=False)
    cycle = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    last_cycle_completed_at = models.DateTimeField(null=True, blank=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The run that holds this sync's lock; taken and released under the row lock (see runner/syncs.py).
    running_run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["worker__slug", "key"]
        constraints = [models.UniqueConstraint(fields=["worker", "key"], name="unique_sync_per_worker")]
        permissions = [("run_sync", "Can run syncs")]
        verbose_name = _("sync")
        verbose_name_plural = _("syncs")

    def __str__(self) -> str:
        return f"{self.worker.slug}:{self.key}"


class SyncSeenKeys(models.Model):
    """The keys of unchanged records one page of a replace-mode cycle mentioned.

    Committed with the page, so a resumed cycle still knows what its earlier pages saw; one row a
    page instead of one write per unchanged record. Deleted when the cycle completes.
    """

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="+")
    cycle = models.PositiveIntegerField()
    page = models.PositiveIntegerField()
    keys = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["sync", "cycle"], name="seen_keys_sync_cycle")]

    def __str__(self) -> str:
        return f"{self.sync_id}: cycle {self.cycle}, page {self.page}"


class Webhook(models.Model):
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="webhooks")
    key = models.CharField(_("key"), max_length=100)
    # {"secret": "NAME", "header": ..., "algorithm": ..., "prefix": ..., "timestamp_header": ...}
    signature = models.JSONField(_("signature check"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["worker__slug", "key"]
        constraints = [models.UniqueConstraint(fields=["worker", "key"], name="unique_webhook_per_worker")]
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self) -> str:
        return f"{self.worker.slug}:{self.key}"

    def get_absolute_path(self) -> str:
        return reverse("webhook", kwargs={"worker": self.worker.slug, "webhook": self.key})


class WebhookEvent(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("accepted")
        REJECTED = "rejected", _("rejected")

    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    path = models.CharField(max_length=300)
    method = models.CharField(max_length=10)
    headers = models.JSONField(default=dict)
    body = models.BinaryField(blank=True, default=b"")
    body_size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # For an accepted signed request: a digest of what the signature covers (see runner/webhooks.py).
    # Unique, so the same signed request is handled once even when two copies arrive together.
    replay_digest = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-received_at"]
        # A constraint, not unique=True: that adds a LIKE index on PostgreSQL, one more entry to
        # write for every event, which no query reads.
        constraints = [models.UniqueConstraint(fields=["replay_digest"], name="unique_event_replay_digest")]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.path} {self.status}"


class WebhookRefusalCount(models.Model):
    """Refused webhook requests per clock hour, stored or not; `scope` is "worker/key", or "" for unknown paths."""

    scope = models.CharField(_("webhook"), max_length=201, blank=True)
    hour = models.DateTimeField(_("hour"), db_index=True)
    refused = models.PositiveIntegerField(_("refused"), default=0)
    stored = models.PositiveIntegerField(_("stored"), default=0)

    class Meta:
        ordering = ["-hour", "scope"]
        constraints = [models.UniqueConstraint(fields=["scope", "hour"], name="unique_refusal_count_per_hour")]
        verbose_name = _("webhook refusal count")
        verbose_name_plural = _("webhook refusal counts")

    def __str__(self) -> str:
        return f"{self.scope or '(unknown path)'} {self.hour:%Y-%m-%d %H:00}: {self.refused}"


class Run(models.Model):
    """One execution of a tool, a sync or a webhook handler."""

    class Kind(models.TextChoices):
        TOOL = "tool", _("tool")
        SYNC = "sync", _("sync")
        WEBHOOK = "webhook", _("webhook")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        RETRYING = "retrying", _("retrying")
        SKIPPED = "skipped", _("skipped")
        CANCELLED = "cancelled", _("cancelled")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)
    # Not started yet: what a cancellation stops for good (see runner/cancel.py).
    NOT_STARTED = (Status.QUEUED, Status.RETRYING)

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="runs")
    target = models.CharField(_("target"), max_length=100, help_text=_("Tool, sync or webhook key."))
    # The optional links are indexed where set only (Meta.indexes): see there.
    tool = models.ForeignKey(
        Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", db_index=False
    )
    sync = models.ForeignKey(
        Sync, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", db_index=False
    )
    webhook_event = models.ForeignKey(
        WebhookEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", db_index=False
    )
    trigger = models.CharField(_("trigger"), max_length=20, blank=True)
    # The MCP client's key for runs it started (trigger "mcp"); kept when the key is deleted, as a name.
    api_key = models.ForeignKey(
        "ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        verbose_name=_("API key"),
        db_index=False,
    )
    api_key_name = models.CharField(_("API key name"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    input = models.JSONField(_("input"), null=True, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    result_truncated = models.BooleanField(default=False)
    error = models.TextField(_("error"), blank=True)
    traceback = models.TextField(_("traceback"), blank=True)
    log = models.TextField(_("log output"), blank=True)
    progress = models.JSONField(_("progress"), default=dict, blank=True)
    task_id = models.CharField(max_length=255, blank=True)
    # The broker did not take the run's message (down, unreachable): the beat task requeue_lost_runs
    # sends it again. Set only on that failure, so a normal run costs no extra write.
    unsent = models.BooleanField(
        _("not sent"), default=False, help_text=_("The broker refused its message; it is sent again every minute.")
    )
    # When a not-started run's message is due at a worker, where not at queued_at: a retry's end of
    # backoff, or the last time requeue_lost_runs sent it again. A run no worker has taken long after
    # that lost its message (see runs.send_overdue). Set with writes the run makes anyway.
    due_at = models.DateTimeField(_("due"), null=True, blank=True, editable=False)
    # "host:pid" of the process executing the run, and its last sign of life: a run whose process
    # is gone (killed worker) can be told apart from one that is still working.
    owner = models.CharField(_("executed by"), max_length=300, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # Set on a running run that a person asked to stop: its heartbeat sees it and stops the code.
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    cancelled_by = models.CharField(_("cancelled by"), max_length=200, blank=True)
    queued_at = models.DateTimeField(_("queued"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    code_fingerprint = models.CharField(
        _("code fingerprint"), max_length=64, blank=True, help_text=_("Of the worker code the process had imported.")
    )
    deployed_fingerprint = models.CharField(
        _("deployed fingerprint"), max_length=64, blank=True, help_text=_("Of the worker code deployed at the time.")
    )
    code_outdated = models.BooleanField(
        _("code outdated"), default=False, help_text=_("The process's files had changed since it imported them.")
    )

    class Meta:
        ordering = ["-queued_at"]
        # A run's row is written three times (queued, claimed, finished), and its status changes each
        # time, so PostgreSQL cannot update it in place: every write adds an entry to every index
        # that covers the row. So no index is kept twice (status alone is the prefix of two below;
        # Django's LIKE twin of an indexed CharField served no query), and what is empty until a run
        # ends, or set for one kind of run only, is indexed where it is set: a tool run writes 20
        # index entries, not 42, and PostgreSQL's write-ahead log a run went from about 4,200 bytes
        # to 2,600 (README, "Performance").
        indexes = [
            models.Index(fields=["kind", "status"]),
            # The overview's lists: the oldest queued runs, the newest failures, each sync's last run.
            models.Index(fields=["status", "queued_at"], name="run_status_queued"),
            models.Index(
                fields=["status", "finished_at"], name="run_status_finished", condition=Q(finished_at__isnull=False)
            ),
            models.Index(fields=["sync", "queued_at"], name="run_sync_queued", condition=Q(sync__isnull=False)),
            # Retention and the metrics' window; deleting a tool, an event or an API key (SET NULL).
            models.Index(fields=["finished_at"], name="run_finished", condition=Q(finished_at__isnull=False)),
            models.Index(fields=["tool"], name="run_tool", condition=Q(tool__isnull=False)),
            models.Index(fields=["webhook_event"], name="run_webhook_event", condition=Q(webhook_event__isnull=False)),
            models.Index(fields=["api_key"], name="run_api_key", condition=Q(api_key__isnull=False)),
        ]
        permissions = [("cancel_run", "Can cancel runs")]
        verbose_name = _("run")
        verbose_name_plural = _("runs")

    # Why the broker refused this run's message, when runs.send found it did (not stored: `unsent` is).
    send_error = ""
    # The worker's secret and token ciphertexts, (ciphertext, capability name or ""), read by the claim
    # in the same statement (runner/statements.py); None when the run was claimed another way.
    claimed_ciphertexts: list[tuple[str, str]] | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.target} #{self.pk}"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def code_mismatch(self) -> bool:
        """The process ran other worker code than was deployed: it imported the module before an edit."""
        return bool(self.code_fingerprint and self.deployed_fingerprint) and (
            self.code_fingerprint != self.deployed_fingerprint
        )

    @property
    def code_warning(self) -> str:
        """What to do about a mismatch, naming the process and machine; empty when there is none."""
        if not self.code_mismatch:
            return ""
        host, _, pid = self.owner.rpartition(":")
        host, pid = host or "?", pid or "?"
        if self.code_outdated:
            return (
                f"Ran outdated worker code ({self.code_fingerprint}; deployed: {self.deployed_fingerprint}) in "
                f"process {pid} on {host}: restart the Celery worker it belongs to on {host}."
            )
        return (
            f"Ran worker code ({self.code_fingerprint}) that is not the deployed code ({self.deployed_fingerprint}) "
            f"in process {pid} on {host}, as in {host}'s files: run `workers deploy` with this code, or update "
            f"the code on {host} and restart its Celery worker."
        )


class Pacer(models.Model):
    """`worker.pacer(...)` as last deployed; on the database backend its row also holds the shared budget."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="pacers")
    key = models.CharField(_("key"), max_length=100)
    allowed_requests = models.PositiveIntegerField(_("allowed requests"))
    interval_ms = models.PositiveIntegerField(_("interval (ms)"))
    is_active = models.BooleanField(_("active"), default=True)
    # The budget when no Redis holds it (see connections/pacers.py), in microseconds since the epoch:
    # the next free slot, and the end of a pause a 429 asked for.
    next_slot_us = models.BigIntegerField(default=0)
    paused_until_us = models.BigIntegerField(default=0)
    # When the last `allowed_requests` (at most 1000) requests went, newest first: the window check.
    goes = models.JSONField(default=list, blank=True)
    # Requests per second over the last minute, {"<epoch second>": count}: pruned on every write.
    recent = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["worker__slug", "key"]
        constraints = [models.UniqueConstraint(fields=["worker", "key"], name="unique_pacer_per_worker")]
        verbose_name = _("pacer")
        verbose_name_plural = _("pacers")

    def __str__(self) -> str:
        return f"{self.worker.slug}:{self.key}"


class MetricCounter(models.Model):
    """A counter that outlives every process (token refreshes, sync records written): `/metrics` reads it.

    Kept in the database because the counting happens in Celery workers and web processes on many
    machines, and a scrape reaches one of them; see connections/metrics.py.
    """

    name = models.CharField(_("name"), max_length=100)
    label = models.CharField(_("label"), max_length=100, blank=True)
    value = models.BigIntegerField(_("value"), default=0)

    class Meta:
        ordering = ["name", "label"]
        constraints = [models.UniqueConstraint(fields=["name", "label"], name="unique_metric_counter")]
        verbose_name = _("metric counter")
        verbose_name_plural = _("metric counters")

    def __str__(self) -> str:
        return f"{self.name}{{{self.label}}} {self.value}"


class ApiKeyQuerySet(models.QuerySet):
    def usable(self) -> ApiKeyQuerySet:
        """Neither revoked nor expired."""
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiKey(models.Model):
    """A bearer key for MCP clients. Only a SHA-256 of the key is stored; `prefix` identifies it in lists."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    prefix = models.CharField(_("prefix"), max_length=20, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Empty: every worker / every tool. Tools are named as MCP clients see them ("worker__tool").
    workers = models.JSONField(_("workers"), default=list, blank=True)
    tools = models.JSONField(_("tools"), default=list, blank=True)
    read_only = models.BooleanField(
        _("read-only"), default=False, help_text=_("Only tools with the read-only hint, and database queries.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class KeyCanary(models.Model):
    """One known value encrypted under the key the database was first checked with.

    Start-up decrypts it (and a bounded sample of stored values) instead of every stored value,
    so a wrong FIELD_ENCRYPTION_KEY is refused in the same time at 10 values or 10 million.
    `workers keys rotate` re-encrypts it with everything else.
    """

    value = EncryptedTextField(_("value"))

    class Meta:
        verbose_name = _("key canary")
        verbose_name_plural = _("key canaries")

    def __str__(self) -> str:
        return "key canary"
