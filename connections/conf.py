"""The app's settings in one place, read lazily so `override_settings` works."""

from __future__ import annotations

from django.conf import settings


class AppSettings:
    """Typed access to every setting the app reads, with its default."""

    @property
    def PUBLIC_URL(self) -> str:
        """The site's external base URL; the OAuth redirect URL is built from it."""
        return str(getattr(settings, "PUBLIC_URL", "http://127.0.0.1:8000")).rstrip("/")

    @property
    def REDIRECT_PATH(self) -> str:
        return "/oauth/callback/"

    @property
    def REDIRECT_URL(self) -> str:
        return self.PUBLIC_URL + self.REDIRECT_PATH

    @property
    def WORKER_MODULES(self) -> list[str]:
        return list(getattr(settings, "WORKER_MODULES", []))

    @property
    def SERVE_RELOAD(self) -> bool:
        """Whether `workers serve` restarts its web server, Celery worker and beat when a .py file of the
        project or of WORKER_MODULES changes (`--noreload` turns it off for one run)."""
        return bool(getattr(settings, "WORKERS_SERVE_RELOAD", True))

    @property
    def SANDBOX_PROVIDER(self) -> bool:
        return bool(getattr(settings, "SANDBOX_PROVIDER", False))

    @property
    def TOKEN_REFRESH_MARGIN(self) -> int:
        """Seconds before expiry at which a token is refreshed instead of handed out."""
        return int(getattr(settings, "WORKERS_TOKEN_REFRESH_MARGIN", 60))

    @property
    def HTTP_TIMEOUT(self) -> float:
        """Seconds one request to a provider's token or revocation endpoint may take in all:
        connecting, the headers and the whole body (not per read: a body dripped byte by byte
        stops here too)."""
        return float(getattr(settings, "WORKERS_HTTP_TIMEOUT", 15))

    @property
    def TOKEN_MAX_BODY(self) -> int:
        """Bytes a token or revocation endpoint may answer; a longer answer is refused, never stored."""
        return int(getattr(settings, "WORKERS_TOKEN_MAX_BODY", 64 * 1024))

    @property
    def RETRY_AFTER_MAX(self) -> float:
        """The longest `Retry-After` (seconds) obeyed, from a token endpoint, an API 429 or worker code."""
        return float(getattr(settings, "WORKERS_RETRY_AFTER_MAX", 600))

    @property
    def SESSION_TIMEOUT(self) -> float:
        """Seconds (requests' connect and read timeout) for a `capability.session()` request that
        passes no timeout of its own."""
        return float(getattr(settings, "WORKERS_SESSION_TIMEOUT", 30))

    @property
    def STATE_TTL(self) -> int:
        """Seconds an authorization `state` stays valid."""
        return int(getattr(settings, "WORKERS_STATE_TTL", 600))

    @property
    def REFRESH_IDLE_SECONDS(self) -> int:
        """Refresh tokens unused this long are exercised by the keep-alive task."""
        return int(getattr(settings, "WORKERS_REFRESH_IDLE_SECONDS", 24 * 3600))

    @property
    def EXPIRING_WITHIN(self) -> int:
        """Seconds ahead the background task looks for tokens to refresh."""
        return int(getattr(settings, "WORKERS_EXPIRING_WITHIN", 300))

    @property
    def WEBHOOK_MAX_BODY(self) -> int:
        """Bytes a webhook body may have; a longer one is refused with 413 (chunked ones: read to this)."""
        return int(getattr(settings, "WORKERS_WEBHOOK_MAX_BODY", 1024 * 1024))

    @property
    def WEBHOOK_MAX_HEADERS(self) -> int:
        """Headers kept with a stored webhook event (accepted or refused); the rest are dropped."""
        return int(getattr(settings, "WORKERS_WEBHOOK_MAX_HEADERS", 50))

    @property
    def WEBHOOK_MAX_HEADER_LENGTH(self) -> int:
        """Characters of one header value kept with a stored webhook event; a longer value is cut."""
        return int(getattr(settings, "WORKERS_WEBHOOK_MAX_HEADER_LENGTH", 1024))

    @property
    def WEBHOOK_MAX_REFUSALS_PER_HOUR(self) -> int:
        """Refused requests stored per webhook and clock hour; further ones are only counted and logged."""
        return int(getattr(settings, "WORKERS_WEBHOOK_MAX_REFUSALS_PER_HOUR", 60))

    @property
    def WEBHOOK_TOLERANCE(self) -> int:
        """Seconds a signed webhook's timestamp may differ from now."""
        return int(getattr(settings, "WORKERS_WEBHOOK_TOLERANCE", 300))

    @property
    def RUN_LOG_LIMIT(self) -> int:
        return int(getattr(settings, "WORKERS_RUN_LOG_LIMIT", 64 * 1024))

    @property
    def RUN_RESULT_LIMIT(self) -> int:
        return int(getattr(settings, "WORKERS_RUN_RESULT_LIMIT", 256 * 1024))

    @property
    def TASK_MAX_RETRIES(self) -> int:
        return int(getattr(settings, "WORKERS_TASK_MAX_RETRIES", 5))

    @property
    def RETRY_BACKOFF(self) -> float:
        """Seconds before the first retry of a run; doubled for each further one (with jitter)."""
        return float(getattr(settings, "WORKERS_RETRY_BACKOFF", 2))

    @property
    def RETRY_BACKOFF_MAX(self) -> float:
        """The longest wait between two attempts, a provider's Retry-After excepted (RETRY_AFTER_MAX caps that)."""
        return float(getattr(settings, "WORKERS_RETRY_BACKOFF_MAX", 600))

    @property
    def RUN_LEASE(self) -> int:
        """Seconds without a heartbeat after which a running run on another machine counts as lost."""
        return int(getattr(settings, "WORKERS_RUN_LEASE", 120))

    @property
    def SYNC_MAX_PAGES(self) -> int:
        """Pages one sync run does at most; the next run continues the cycle."""
        return int(getattr(settings, "WORKERS_SYNC_MAX_PAGES", 1000))

    @property
    def RUN_RETENTION_DAYS(self) -> float:
        """Days a finished run is kept (counted from its end); unfinished runs are never purged."""
        return float(getattr(settings, "WORKERS_RUN_RETENTION_DAYS", 30))

    @property
    def WEBHOOK_RETENTION_DAYS(self) -> float:
        """Days a webhook event (its body and headers, and the refusal counts) is kept."""
        return float(getattr(settings, "WORKERS_WEBHOOK_RETENTION_DAYS", 30))

    @property
    def PURGE_BATCH_SIZE(self) -> int:
        """Rows one DELETE statement of the retention purge removes at most, so no table is locked for long."""
        return max(1, int(getattr(settings, "WORKERS_PURGE_BATCH_SIZE", 1000)))

    @property
    def TOOL_TIME_LIMIT(self) -> float:
        """Seconds a tool may run before it is stopped (soft limit); `worker.tool(..., time_limit=)` overrides it."""
        return float(getattr(settings, "WORKERS_TOOL_TIME_LIMIT", 300))

    @property
    def SYNC_PAGE_TIME_LIMIT(self) -> float:
        """Seconds one page of a sync may take (soft limit); `worker.sync(..., time_limit=)` overrides it."""
        return float(getattr(settings, "WORKERS_SYNC_PAGE_TIME_LIMIT", 300))

    @property
    def WEBHOOK_TIME_LIMIT(self) -> float:
        """Seconds a webhook handler may run before it is stopped (soft limit)."""
        return float(getattr(settings, "WORKERS_WEBHOOK_TIME_LIMIT", 300))

    @property
    def TIME_LIMIT_GRACE(self) -> float:
        """Seconds past the soft limit at which code that did not stop is killed (the hard limit)."""
        return float(getattr(settings, "WORKERS_TIME_LIMIT_GRACE", 10))

    @property
    def JSON_MAX_DEPTH(self) -> int:
        """How deeply tool input, tool results and webhook JSON may nest."""
        return int(getattr(settings, "WORKERS_JSON_MAX_DEPTH", 64))

    @property
    def LOG_REDACT_MAX_VALUES(self) -> int:
        """How many secret and token values one process remembers to blank in its log lines.

        Every value the process decrypts or encrypts is remembered; past this many, the least
        recently used are forgotten (old tokens, long expired). Each costs a substring search per line.
        """
        return int(getattr(settings, "WORKERS_LOG_REDACT_MAX_VALUES", 1000))

    @property
    def PACER_REDIS_URL(self) -> str:
        """Where pacer budgets live: this Redis URL; empty means the broker's when it is Redis, else the database."""
        url = str(getattr(settings, "WORKERS_PACER_REDIS_URL", "") or "")
        if url:
            return url
        broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
        return broker if broker.startswith(("redis://", "rediss://", "unix://")) else ""

    @property
    def PACER_HEADROOM(self) -> float:
        """Fraction added to a pacer's spacing, so jitter between wait() and the request's arrival
        never puts more than `allowed_requests` into one interval (0.05: 10/s paces at 9.5/s)."""
        return max(0.0, float(getattr(settings, "WORKERS_PACER_HEADROOM", 0.05)))

    @property
    def PACER_MAX_WAIT(self) -> float:
        """Seconds a pacer's wait() may block; a longer queue raises PacerTimeout (the run is retried)."""
        return float(getattr(settings, "WORKERS_PACER_MAX_WAIT", 300))

    @property
    def PACER_MAX_PAUSE(self) -> float:
        """The longest pause a 429's Retry-After may impose on a pacer, in seconds."""
        return float(getattr(settings, "WORKERS_PACER_MAX_PAUSE", 3600))

    @property
    def METRICS_TOKEN(self) -> str:
        """The bearer token `/metrics` asks for; empty (the default) turns the endpoint off (404)."""
        return str(getattr(settings, "METRICS_TOKEN", "") or "")

    @property
    def METRICS_WINDOW(self) -> int:
        """Seconds back `/metrics` looks for the run duration and queue wait histograms (runs finished,
        or started, that recently); bounds the rows those two queries read."""
        return max(1, int(getattr(settings, "WORKERS_METRICS_WINDOW", 3600)))

    @property
    def LOG_FORMAT(self) -> str:
        """`plain` (one line of text per record) or `json` (one JSON object per line), for every process."""
        return str(getattr(settings, "LOG_FORMAT", "plain"))

    @property
    def BEAT_HEARTBEAT_FILE(self) -> str:
        """A file beat touches on every tick of its scheduler (at least every 5 s); beat's health check
        reads its age. Default `.run/beat.heartbeat` in the project folder; empty: none."""
        default = str(getattr(settings, "BASE_DIR", ".")) + "/.run/beat.heartbeat"
        return str(getattr(settings, "WORKERS_BEAT_HEARTBEAT_FILE", default) or "")


app_settings = AppSettings()
