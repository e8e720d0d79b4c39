"""Which failures are retried, and how long the runner waits (values, not clocks)."""

from __future__ import annotations

import pytest
import requests

from connections.exceptions import ReauthorizationRequired, RetryableError, TokenRefreshError
from connections.runner.retry import backoff, next_retry, parse_retry_after, retry_after_for


def http_error(status: int, retry_after: str | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"{status} error", response=response)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (http_error(429, "1"), (True, 1.0)),
        (http_error(503), (True, None)),
        (http_error(502, "7"), (True, 7.0)),
        (http_error(404), (False, None)),
        (http_error(401), (False, None)),
        (ReauthorizationRequired("githubAuth", "revoked"), (False, None)),
        (TokenRefreshError("githubAuth", "provider down", retry_after=30), (True, 30)),
        (TokenRefreshError("githubAuth", "invalid client", retryable=False), (False, None)),
        (RetryableError("busy", retry_after=2), (True, 2)),
        (requests.ConnectionError("refused"), (True, None)),
        (ValueError("bug"), (False, None)),
    ],
)
def test_what_is_retried(error, expected):
    assert retry_after_for(error) == expected


def test_a_cause_raised_from_is_seen_through():
    try:
        try:
            raise ReauthorizationRequired("githubAuth", "revoked")
        except ReauthorizationRequired as exc:
            raise RuntimeError("could not list repos") from exc
    except RuntimeError as wrapped:
        assert retry_after_for(wrapped) == (False, None)


def test_retry_after_is_honoured_and_backoff_grows_with_jitter_up_to_the_cap(settings):
    settings.WORKERS_RETRY_BACKOFF = 2
    settings.WORKERS_RETRY_BACKOFF_MAX = 60
    assert all(1.0 <= backoff(1, retry_after=1.0) <= 1.2 for _ in range(50))
    assert all(1.0 <= backoff(1) <= 2.0 for _ in range(50))
    assert all(4.0 <= backoff(3) <= 8.0 for _ in range(50))
    assert all(30.0 <= backoff(20) <= 60.0 for _ in range(50))
    assert len({backoff(3) for _ in range(20)}) > 1  # jitter: runs that failed together spread out


def test_retries_are_bounded(settings):
    settings.WORKERS_TASK_MAX_RETRIES = 2
    assert next_retry(http_error(503), attempt=2) is not None
    assert next_retry(http_error(503), attempt=3) is None
    assert next_retry(ReauthorizationRequired("githubAuth"), attempt=1) is None


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
