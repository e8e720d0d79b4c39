"""One reader of `Retry-After` (seconds or an HTTP date), capped at WORKERS_RETRY_AFTER_MAX.

The token refresh, `capability.session()` 429s (through the runner's retry) and the runner's own
backoff all read the header here, so a provider asking for three years gets the cap instead.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .conf import app_settings


def cap_retry_after(seconds: float | None) -> float | None:
    """`seconds` within 0 .. RETRY_AFTER_MAX; None stays None, and so does anything not finite."""
    if seconds is None:
        return None
    try:
        seconds = float(seconds)
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), app_settings.RETRY_AFTER_MAX)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header value, capped; None when absent or unreadable."""
    if not value:
        return None
    value = str(value).strip()[:100]  # an HTTP date is 29 characters; more is not a header we read
    try:
        return cap_retry_after(float(value))
    except (ValueError, OverflowError):
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return cap_retry_after((when - datetime.now(UTC)).total_seconds())
