"""Token-response inspection as units: what a token endpoint's answer must hold before anything is stored.

test_hostile.py drives the same rules through a real provider on 127.0.0.1; these run in
milliseconds (`PYTEST_ARGS="-m unit"`) and name the exact rule that broke.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connections.oauth.client import EXPIRES_IN_RANGE, ProviderError, expires_in_seconds, read_token_response

pytestmark = pytest.mark.unit

JSON = {"Content-Type": "application/json"}


def answer(data: object, status: int = 200, headers: dict[str, str] = JSON) -> dict:
    return read_token_response(status, headers, json.dumps(data).encode())


def refused(status: int, headers: dict[str, str], raw: bytes) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        read_token_response(status, headers, raw)
    return caught.value


def test_a_good_answer_is_kept_with_bearer_filled_in_and_expires_in_as_seconds():
    data = answer({"access_token": "at-1", "refresh_token": "rt-1", "expires_in": "3600", "expires_at": 1})
    assert data == {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600.0, "token_type": "Bearer"}


def test_a_form_encoded_answer_is_read_as_github_sends_it():
    raw = b"access_token=gho_abc&scope=repo&token_type=bearer"
    data = read_token_response(200, {"Content-Type": "application/x-www-form-urlencoded"}, raw)
    assert data == {"access_token": "gho_abc", "scope": "repo", "token_type": "bearer"}


def test_an_error_field_is_an_error_even_with_http_200():
    error = refused(200, JSON, b'{"error": "bad_verification_code", "error_description": "expired"}')
    assert (error.error, error.description, error.retryable) == ("bad_verification_code", "expired", False)
    assert refused(400, JSON, b'{"error": "slow_down"}').retryable is True


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_retryable_with_retry_after_in_either_form(status):
    assert refused(status, {"Retry-After": "7"}, b"").retry_after == 7
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 50 < refused(status, {"Retry-After": when}, b"").retry_after <= 61


@pytest.mark.parametrize(
    ("raw", "headers", "what"),
    [
        (b"<html><body>Sign in</body></html>", {"Content-Type": "text/html"}, "an HTML page"),
        (b"\x00\x01binary", {"Content-Type": "application/octet-stream"}, "an unreadable body"),
        (b"[1, 2]", JSON, "an unreadable body"),
    ],
)
def test_what_is_not_a_token_answer_is_named_not_shown(raw, headers, what):
    error = refused(200, headers, raw)
    assert error.error == "invalid_response" and error.description == f"the token endpoint answered {what}"


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        ({}, "invalid_response", "has no access_token"),
        ({"access_token": 12}, "invalid_response", "not a non-empty string"),
        ({"access_token": "a\r\nX-Evil: 1"}, "invalid_response", "characters no token has"),
        ({"access_token": "a", "refresh_token": 5}, "invalid_response", "refresh_token"),
        ({"access_token": "a", "token_type": "mac"}, "unsupported_token_type", "of type mac"),
        ({"access_token": "a", "scope": {"x": 1}}, "invalid_response", "neither text nor a list"),
    ],
)
def test_token_fields_we_could_only_store_wrongly_are_refused(data, error, reason):
    caught = refused(200, JSON, json.dumps(data).encode())
    assert caught.error == error and reason in caught.description


def test_json_too_deep_is_refused_as_retryable():
    caught = refused(200, JSON, b"[" * 5000 + b"]" * 5000)
    assert caught.error == "invalid_response" and caught.retryable


@pytest.mark.parametrize("value", [True, None, "soon", float("nan"), float("inf"), -5, 0, EXPIRES_IN_RANGE[1] * 2])
def test_an_unusable_expires_in_is_not_believed(value):
    assert expires_in_seconds(value) is None


def test_an_unusable_expires_in_is_dropped_so_the_fallback_lifetime_applies():
    assert answer({"access_token": "a", "expires_in": "soon"}) == {"access_token": "a", "token_type": "Bearer"}


def test_a_usable_expires_in_is_seconds():
    assert expires_in_seconds(" 3600 ") == 3600.0 and expires_in_seconds(59.5) == 59.5
