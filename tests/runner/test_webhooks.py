"""Webhooks: a signed request is stored, answered 202 and handled on a real Celery worker; bad ones are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests

from connections.models import Run, WebhookEvent

from .conftest import HOOK_SECRET, wait_for_run

pytestmark = pytest.mark.celery


def signed_headers(body: bytes, *, secret: str = HOOK_SECRET, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={digest}", "X-Timestamp": str(stamp), "Content-Type": "application/json"}


def post(site, hook: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{site.url}/webhooks/runner-test/{hook}/", data=body, headers=headers, timeout=10)


def test_a_signed_event_is_answered_202_and_handled_by_a_worker(runner_site, celery_worker):
    body = json.dumps({"action": "opened", "number": 7}).encode()

    answer = post(runner_site, "signed", body, signed_headers(body))

    assert answer.status_code == 202
    event = WebhookEvent.objects.get(pk=answer.json()["event"])
    assert event.status == "accepted" and bytes(event.body) == body
    run = wait_for_run(answer.json()["run"])
    assert run.kind == "webhook" and run.status == "succeeded"
    assert run.result == {"received": {"action": "opened", "number": 7}, "method": "POST", "has_signature": True}
    assert "handling opened" in run.log


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong secret", "signature does not match"),
        ("tampered body", "signature does not match"),
        ("no signature", "missing signature header X-Signature"),
        ("stale timestamp", "timestamp outside the 300 s tolerance"),
        ("future timestamp", "timestamp outside the 300 s tolerance"),
    ],
)
def test_bad_signatures_and_replays_are_refused_and_recorded(runner_site, case, reason):
    body = json.dumps({"action": "opened"}).encode()
    headers = {
        "wrong secret": signed_headers(body, secret="not-the-secret"),
        "tampered body": signed_headers(b'{"action": "closed"}'),
        "no signature": {"X-Timestamp": str(int(time.time()))},
        # A request captured ten minutes ago, replayed with its (valid) signature.
        "stale timestamp": signed_headers(body, stamp=int(time.time()) - 600),
        "future timestamp": signed_headers(body, stamp=int(time.time()) + 600),
    }[case]

    answer = post(runner_site, "signed", body, headers)

    assert answer.status_code == 401
    assert reason in answer.json()["reason"]
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and reason in event.reason and bytes(event.body) == b""
    assert not Run.objects.exists()  # nothing runs


def test_an_oversized_body_is_refused_without_being_read(runner_site, settings):
    settings.WORKERS_WEBHOOK_MAX_BODY = 1024
    body = json.dumps({"padding": "x" * 5000}).encode()

    answer = post(runner_site, "signed", body, signed_headers(body))

    assert answer.status_code == 413
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and event.body_size == len(body) and "over the 1024 byte limit" in event.reason
    assert not Run.objects.exists()


def test_verify_function_refusal_is_a_401(runner_site):
    answer = post(runner_site, "checked", b"{}", {"X-Token": "guess"})

    assert answer.status_code == 401 and "wrong X-Token" in answer.json()["reason"]
    assert WebhookEvent.objects.get().status == "rejected" and not Run.objects.exists()


def test_unknown_webhook_and_wrong_method(runner_site):
    assert post(runner_site, "nope", b"{}", {}).status_code == 404
    assert requests.get(f"{runner_site.url}/webhooks/runner-test/signed/", timeout=10).status_code == 405
    assert not Run.objects.exists()


def test_credentials_in_headers_are_not_stored(runner_site, celery_worker):
    answer = post(runner_site, "checked", b"{}", {"X-Token": "let-me-in", "Authorization": "Bearer abcdef123456"})

    assert answer.status_code == 202
    event = WebhookEvent.objects.get()
    assert "authorization" not in event.headers and event.headers["x-token"] == "let-me-in"
    assert wait_for_run(answer.json()["run"]).result == {"ok": True}
