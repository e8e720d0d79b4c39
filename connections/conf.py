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
    def SANDBOX_PROVIDER(self) -> bool:
        return bool(getattr(settings, "SANDBOX_PROVIDER", False))

    @property
    def TOKEN_REFRESH_MARGIN(self) -> int:
        """Seconds before expiry at which a token is refreshed instead of handed out."""
        return int(getattr(settings, "WORKERS_TOKEN_REFRESH_MARGIN", 60))

    @property
    def HTTP_TIMEOUT(self) -> float:
        """Seconds to wait for a provider's token endpoint."""
        return float(getattr(settings, "WORKERS_HTTP_TIMEOUT", 15))

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
        return int(getattr(settings, "WORKERS_WEBHOOK_MAX_BODY", 1024 * 1024))

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
        """The longest wait between two attempts, a provider's Retry-After excepted."""
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
    def JSON_MAX_DEPTH(self) -> int:
        """How deeply tool input, tool results and webhook JSON may nest."""
        return int(getattr(settings, "WORKERS_JSON_MAX_DEPTH", 64))

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


app_settings = AppSettings()
