"""Which failures are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import random

import requests

from ..conf import app_settings
from ..exceptions import ReauthorizationRequired, RetryableError, TokenRefreshError
from ..retry_after import cap_retry_after, parse_retry_after


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and the ones it was explicitly raised from (`raise ... from exc`)."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain


def retry_after_for(exc: BaseException) -> tuple[bool, float | None]:
    """(retryable, Retry-After seconds if the failure named one).

    Passing failures are retried: a token refresh the provider could not do now, HTTP 429 and 5xx,
    a connection that failed or timed out. A connection that needs re-authorization is not: no
    number of retries fixes it, and retrying would only hammer the provider.
    """
    for cause in _causes(exc):
        if isinstance(cause, ReauthorizationRequired):
            return False, None
        if isinstance(cause, TokenRefreshError):
            return cause.retryable, cause.retry_after
        if isinstance(cause, RetryableError):
            return True, cause.retry_after
        if isinstance(cause, requests.HTTPError) and cause.response is not None:
            status = cause.response.status_code
            if status == 429 or 500 <= status < 600:
                return True, parse_retry_after(cause.response.headers.get("Retry-After"))
            return False, None
        if isinstance(cause, (requests.ConnectionError, requests.Timeout)):
            return True, None
    return False, None


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first).

    With a Retry-After the wait is at least that long, up to RETRY_AFTER_MAX whoever named it
    (a provider's header, or worker code raising RetryableError); otherwise it doubles from
    RETRY_BACKOFF up to RETRY_BACKOFF_MAX. Jitter spreads the retries of many runs that failed together.
    """
    retry_after = cap_retry_after(retry_after)
    if retry_after is not None:
        return retry_after + random.uniform(0, min(1.0, 0.1 * retry_after + 0.1))
    ceiling = min(app_settings.RETRY_BACKOFF_MAX, app_settings.RETRY_BACKOFF * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def next_retry(exc: BaseException, attempt: int) -> float | None:
    """Seconds until the next attempt, or None when the run should fail now."""
    retryable, retry_after = retry_after_for(exc)
    if not retryable or attempt > app_settings.TASK_MAX_RETRIES:
        return None
    return backoff(attempt, retry_after)


__all__ = ["backoff", "next_retry", "parse_retry_after", "retry_after_for"]
