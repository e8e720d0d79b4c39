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
    def LOG_REDACT_MAX_VALUES(self) -> int:
        """How many secret and token values one process remembers to blank in its log lines.

        Every value the process decrypts or encrypts is remembered; past this many, the least
        recently used are forgotten (old tokens, long expired). Each costs a substring search per line.
        """
        return int(getattr(settings, "WORKERS_LOG_REDACT_MAX_VALUES", 1000))


app_settings = AppSettings()
