"""The app's settings in one place, read lazily so `override_settings` works."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

# Every default, written once: `AppSettings` below falls back to them, and the project's settings
# module reads each WORKERS_* name from the environment with them (`from_environment`). One prefix:
# an app setting is `WORKERS_<NAME>` in the environment and in Django settings, and
# `app_settings.<NAME>` here; PUBLIC_URL, WORKER_MODULES, SANDBOX_PROVIDER, METRICS_TOKEN and
# LOG_FORMAT are site-wide names (the contract's, and the deployment's), without it.
DEFAULTS: dict[str, Any] = {
    "PUBLIC_URL": "http://127.0.0.1:8000",
    "WORKER_MODULES": ["examples.sandbox", "examples.github", "examples.google", "examples.salesforce"],
    "SANDBOX_PROVIDER": False,
    "METRICS_TOKEN": "",
    "LOG_FORMAT": "plain",
    "WORKERS_SERVE_RELOAD": True,
    "WORKERS_TOKEN_REFRESH_MARGIN": 60,
    "WORKERS_HTTP_TIMEOUT": 15.0,
    "WORKERS_TOKEN_MAX_BODY": 64 * 1024,
    "WORKERS_RETRY_AFTER_MAX": 600.0,
    "WORKERS_SESSION_TIMEOUT": 30.0,
    "WORKERS_STATE_TTL": 600,
    "WORKERS_REFRESH_IDLE_SECONDS": 24 * 3600,
    "WORKERS_EXPIRING_WITHIN": 300,
    "WORKERS_WEBHOOK_MAX_BODY": 1024 * 1024,
    "WORKERS_WEBHOOK_MAX_HEADERS": 50,
    "WORKERS_WEBHOOK_MAX_HEADER_LENGTH": 1024,
    "WORKERS_WEBHOOK_MAX_REFUSALS_PER_HOUR": 60,
    "WORKERS_WEBHOOK_TOLERANCE": 300,
    "WORKERS_RUN_LOG_LIMIT": 64 * 1024,
    "WORKERS_RUN_RESULT_LIMIT": 256 * 1024,
    "WORKERS_TASK_MAX_RETRIES": 5,
    "WORKERS_RETRY_BACKOFF": 2.0,
    "WORKERS_RETRY_BACKOFF_MAX": 600.0,
    "WORKERS_RUN_LEASE": 120,
    "WORKERS_RUN_RESEND_AFTER": 3600,
    "WORKERS_RUN_CANCEL_CHECK": 5.0,
    "WORKERS_SYNC_MAX_PAGES": 1000,
    "WORKERS_RUN_RETENTION_DAYS": 30.0,
    "WORKERS_WEBHOOK_RETENTION_DAYS": 30.0,
    "WORKERS_PURGE_BATCH_SIZE": 1000,
    "WORKERS_TOOL_TIME_LIMIT": 300.0,
    "WORKERS_SYNC_PAGE_TIME_LIMIT": 300.0,
    "WORKERS_WEBHOOK_TIME_LIMIT": 300.0,
    "WORKERS_TIME_LIMIT_GRACE": 10.0,
    "WORKERS_JSON_MAX_DEPTH": 64,
    "WORKERS_LOG_REDACT_MAX_VALUES": 1000,
    "WORKERS_PACER_REDIS_URL": "",
    "WORKERS_PACER_HEADROOM": 0.05,
    "WORKERS_PACER_MAX_WAIT": 300.0,
    "WORKERS_PACER_MAX_PAUSE": 3600.0,
    "WORKERS_METRICS_WINDOW": 3600,
    "WORKERS_MCP_IN_PROCESS": False,
    "WORKERS_MCP_CALL_TIMEOUT": 120.0,
    "WORKERS_MCP_QUERY_MAX_LIMIT": 100,
    "WORKERS_MCP_MAX_BODY": 1024 * 1024,
    "WORKERS_WEB_THREADS": 8,
    "WORKERS_PREPARED_STATEMENTS": True,
    # Relative to the project folder; empty: no heartbeat file.
    "WORKERS_BEAT_HEARTBEAT_FILE": ".run/beat.heartbeat",
}


def _setting(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def from_environment(env: Any) -> dict[str, Any]:
    """Every WORKERS_* setting read from `env` (a django-environ `Env`), cast like its default."""
    casts = {bool: env.bool, int: env.int, float: env.float, str: env.str}
    return {
        name: casts[type(default)](name, default=default)
        for name, default in DEFAULTS.items()
        if name.startswith("WORKERS_")
    }


class AppSettings:
    """Typed access to every setting the app reads, with its default."""

    @property
    def PUBLIC_URL(self) -> str:
        """The site's external base URL; the OAuth redirect URL is built from it."""
        return str(_setting("PUBLIC_URL")).rstrip("/")

    @property
    def REDIRECT_PATH(self) -> str:
        """The OAuth callback's path, from the URLconf (`oauth-callback`), wherever the site mounts it."""
        from django.urls import reverse

        return reverse("oauth-callback")

    @property
    def REDIRECT_URL(self) -> str:
        return self.PUBLIC_URL + self.REDIRECT_PATH

    @property
    def WORKER_MODULES(self) -> list[str]:
        return list(_setting("WORKER_MODULES"))

    @property
    def SERVE_RELOAD(self) -> bool:
        """Whether `workers serve` restarts its web server, Celery worker and beat when a .py file of the
        project or of WORKER_MODULES changes (`--noreload` turns it off for one run)."""
        return bool(_setting("WORKERS_SERVE_RELOAD"))

    @property
    def SANDBOX_PROVIDER(self) -> bool:
        return bool(_setting("SANDBOX_PROVIDER"))

    @property
    def TOKEN_REFRESH_MARGIN(self) -> int:
        """Seconds before expiry at which a token is refreshed instead of handed out."""
        return int(_setting("WORKERS_TOKEN_REFRESH_MARGIN"))

    @property
    def HTTP_TIMEOUT(self) -> float:
        """Seconds one request to a provider's token or revocation endpoint may take in all:
        connecting, the headers and the whole body (not per read: a body dripped byte by byte
        stops here too)."""
        return float(_setting("WORKERS_HTTP_TIMEOUT"))

    @property
    def TOKEN_MAX_BODY(self) -> int:
        """Bytes a token or revocation endpoint may answer; a longer answer is refused, never stored."""
        return int(_setting("WORKERS_TOKEN_MAX_BODY"))

    @property
    def RETRY_AFTER_MAX(self) -> float:
        """The longest `Retry-After` (seconds) obeyed, from a token endpoint, an API 429 or worker code."""
        return float(_setting("WORKERS_RETRY_AFTER_MAX"))

    @property
    def SESSION_TIMEOUT(self) -> float:
        """Seconds (requests' connect and read timeout) for a `capability.session()` request that
        passes no timeout of its own."""
        return float(_setting("WORKERS_SESSION_TIMEOUT"))

    @property
    def STATE_TTL(self) -> int:
        """Seconds an authorization `state` stays valid."""
        return int(_setting("WORKERS_STATE_TTL"))

    @property
    def REFRESH_IDLE_SECONDS(self) -> int:
        """Refresh tokens unused this long are exercised by the keep-alive task."""
        return int(_setting("WORKERS_REFRESH_IDLE_SECONDS"))

    @property
    def EXPIRING_WITHIN(self) -> int:
        """Seconds ahead the background task looks for tokens to refresh."""
        return int(_setting("WORKERS_EXPIRING_WITHIN"))

    @property
    def WEBHOOK_MAX_BODY(self) -> int:
        """Bytes a webhook body may have; a longer one is refused with 413 (chunked ones: read to this)."""
        return int(_setting("WORKERS_WEBHOOK_MAX_BODY"))

    @property
    def WEBHOOK_MAX_HEADERS(self) -> int:
        """Headers kept with a stored webhook event (accepted or refused); the rest are dropped."""
        return int(_setting("WORKERS_WEBHOOK_MAX_HEADERS"))

    @property
    def WEBHOOK_MAX_HEADER_LENGTH(self) -> int:
        """Characters of one header value kept with a stored webhook event; a longer value is cut."""
        return int(_setting("WORKERS_WEBHOOK_MAX_HEADER_LENGTH"))

    @property
    def WEBHOOK_MAX_REFUSALS_PER_HOUR(self) -> int:
        """Refused requests stored per webhook and clock hour; further ones are only counted and logged."""
        return int(_setting("WORKERS_WEBHOOK_MAX_REFUSALS_PER_HOUR"))

    @property
    def WEBHOOK_TOLERANCE(self) -> int:
        """Seconds a signed webhook's timestamp may differ from now."""
        return int(_setting("WORKERS_WEBHOOK_TOLERANCE"))

    @property
    def RUN_LOG_LIMIT(self) -> int:
        return int(_setting("WORKERS_RUN_LOG_LIMIT"))

    @property
    def RUN_RESULT_LIMIT(self) -> int:
        return int(_setting("WORKERS_RUN_RESULT_LIMIT"))

    @property
    def TASK_MAX_RETRIES(self) -> int:
        return int(_setting("WORKERS_TASK_MAX_RETRIES"))

    @property
    def RETRY_BACKOFF(self) -> float:
        """Seconds before the first retry of a run; doubled for each further one (with jitter)."""
        return float(_setting("WORKERS_RETRY_BACKOFF"))

    @property
    def RETRY_BACKOFF_MAX(self) -> float:
        """The longest wait between two attempts, a provider's Retry-After excepted (RETRY_AFTER_MAX caps that)."""
        return float(_setting("WORKERS_RETRY_BACKOFF_MAX"))

    @property
    def RUN_LEASE(self) -> int:
        """Seconds without a heartbeat after which a running run on another machine counts as lost."""
        return int(_setting("WORKERS_RUN_LEASE"))

    @property
    def RUN_RESEND_AFTER(self) -> int:
        """Seconds after which a not-started run that no worker took is sent again (its message was lost); 0: never."""
        return int(_setting("WORKERS_RUN_RESEND_AFTER"))

    @property
    def RUN_CANCEL_CHECK(self) -> float:
        """Seconds between two looks of a running run at its row for a cancellation (one small query each)."""
        return float(_setting("WORKERS_RUN_CANCEL_CHECK"))

    @property
    def SYNC_MAX_PAGES(self) -> int:
        """Pages one sync run does at most; the next run continues the cycle."""
        return int(_setting("WORKERS_SYNC_MAX_PAGES"))

    @property
    def RUN_RETENTION_DAYS(self) -> float:
        """Days a finished run is kept (counted from its end); unfinished runs are never purged."""
        return float(_setting("WORKERS_RUN_RETENTION_DAYS"))

    @property
    def WEBHOOK_RETENTION_DAYS(self) -> float:
        """Days a webhook event (its body and headers, and the refusal counts) is kept."""
        return float(_setting("WORKERS_WEBHOOK_RETENTION_DAYS"))

    @property
    def PURGE_BATCH_SIZE(self) -> int:
        """Rows one DELETE statement of the retention purge removes at most, so no table is locked for long."""
        return max(1, int(_setting("WORKERS_PURGE_BATCH_SIZE")))

    @property
    def TOOL_TIME_LIMIT(self) -> float:
        """Seconds a tool may run before it is stopped (soft limit); `worker.tool(..., time_limit=)` overrides it."""
        return float(_setting("WORKERS_TOOL_TIME_LIMIT"))

    @property
    def SYNC_PAGE_TIME_LIMIT(self) -> float:
        """Seconds one page of a sync may take (soft limit); `worker.sync(..., time_limit=)` overrides it."""
        return float(_setting("WORKERS_SYNC_PAGE_TIME_LIMIT"))

    @property
    def WEBHOOK_TIME_LIMIT(self) -> float:
        """Seconds a webhook handler may run before it is stopped (soft limit)."""
        return float(_setting("WORKERS_WEBHOOK_TIME_LIMIT"))

    @property
    def TIME_LIMIT_GRACE(self) -> float:
        """Seconds past the soft limit at which code that did not stop is killed (the hard limit)."""
        return float(_setting("WORKERS_TIME_LIMIT_GRACE"))

    @property
    def JSON_MAX_DEPTH(self) -> int:
        """How deeply tool input, tool results and webhook JSON may nest."""
        return int(_setting("WORKERS_JSON_MAX_DEPTH"))

    @property
    def LOG_REDACT_MAX_VALUES(self) -> int:
        """How many secret and token values one process remembers to blank in its log lines.

        Every value the process decrypts or encrypts is remembered; past this many, the least
        recently used are forgotten (old tokens, long expired). Each costs a substring search per line.
        """
        return int(_setting("WORKERS_LOG_REDACT_MAX_VALUES"))

    @property
    def PACER_REDIS_URL(self) -> str:
        """Where pacer budgets live: this Redis URL; empty means the broker's when it is Redis, else the database."""
        url = str(_setting("WORKERS_PACER_REDIS_URL") or "")
        if url:
            return url
        broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
        return broker if broker.startswith(("redis://", "rediss://", "unix://")) else ""

    @property
    def PACER_HEADROOM(self) -> float:
        """Fraction added to a pacer's spacing, so jitter between wait() and the request's arrival
        never puts more than `allowed_requests` into one interval (0.05: 10/s paces at 9.5/s)."""
        return max(0.0, float(_setting("WORKERS_PACER_HEADROOM")))

    @property
    def PACER_MAX_WAIT(self) -> float:
        """Seconds a pacer's wait() may block; a longer queue raises PacerTimeout (the run is retried)."""
        return float(_setting("WORKERS_PACER_MAX_WAIT"))

    @property
    def PACER_MAX_PAUSE(self) -> float:
        """The longest pause a 429's Retry-After may impose on a pacer, in seconds."""
        return float(_setting("WORKERS_PACER_MAX_PAUSE"))

    @property
    def METRICS_TOKEN(self) -> str:
        """The bearer token `/metrics` asks for; empty (the default) turns the endpoint off (404)."""
        return str(_setting("METRICS_TOKEN") or "")

    @property
    def METRICS_WINDOW(self) -> int:
        """Seconds back `/metrics` looks for the run duration and queue wait histograms (runs finished,
        or started, that recently); bounds the rows those two queries read."""
        return max(1, int(_setting("WORKERS_METRICS_WINDOW")))

    @property
    def LOG_FORMAT(self) -> str:
        """`plain` (one line of text per record) or `json` (one JSON object per line), for every process."""
        return str(_setting("LOG_FORMAT"))

    @property
    def BEAT_HEARTBEAT_FILE(self) -> str:
        """A file beat touches on every tick of its scheduler (at least every 5 s); beat's health check
        reads its age. Default `.run/beat.heartbeat` in the project folder; empty: none."""
        value = str(_setting("WORKERS_BEAT_HEARTBEAT_FILE") or "")
        if value and not os.path.isabs(value):
            value = os.path.join(str(getattr(settings, "BASE_DIR", ".")), value)
        return value

    @property
    def MCP_IN_PROCESS(self) -> bool:
        """Run MCP tool calls in the web (or `workers mcp`) process instead of on a Celery worker:
        for one machine without a worker. Retries still wait as a worker would."""
        return bool(_setting("WORKERS_MCP_IN_PROCESS"))

    @property
    def MCP_CALL_TIMEOUT(self) -> float:
        """Seconds an MCP `tools/call` waits for its run; past it the call answers a tool error naming
        the run, which goes on (follow it with `workers runs`)."""
        return float(_setting("WORKERS_MCP_CALL_TIMEOUT"))

    @property
    def MCP_QUERY_MAX_LIMIT(self) -> int:
        """The most records one MCP database query returns (its `limit` is capped here)."""
        return int(_setting("WORKERS_MCP_QUERY_MAX_LIMIT"))

    @property
    def MCP_MAX_BODY(self) -> int:
        """Bytes an MCP request body may hold over HTTP; a larger one is answered 413 before it is parsed."""
        return int(_setting("WORKERS_MCP_MAX_BODY"))

    @property
    def WEB_THREADS(self) -> int:
        """Django requests one web process (ASGI) runs at once, each in a thread with its own database
        connection; more wait for a free one rather than opening more connections."""
        return max(1, int(_setting("WORKERS_WEB_THREADS")))

    @property
    def PREPARED_STATEMENTS(self) -> bool:
        """Whether the statements run thousands of times a second (the token hot path's; a run's insert,
        claim, secrets read and outcome; a webhook's reads; get_secret) are prepared on PostgreSQL
        (`connections/prepared.py`); turn off behind a pooler in transaction mode that drops prepared statements."""
        return bool(_setting("WORKERS_PREPARED_STATEMENTS"))


app_settings = AppSettings()
