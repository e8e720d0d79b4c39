"""Webhooks: a signed request is stored, answered 202 and handled on a real Celery worker; bad ones are refused."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from wsgiref.util import setup_testing_defaults

import pytest
import requests

from connections.models import Run, Webhook, WebhookEvent

from .conftest import HOOK_SECRET, wait_for_run

pytestmark = pytest.mark.celery


def signed_headers(body: bytes, *, secret: str = HOOK_SECRET, stamp: int | str | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={digest}", "X-Timestamp": str(stamp), "Content-Type": "application/json"}


def plain_signed_headers(body: bytes) -> dict[str, str]:
    """For `signedPlain`: the signature covers the body only, there is no timestamp."""
    digest = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={digest}", "Content-Type": "application/json"}


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


# --- what an anonymous sender can make the site store -------------------------------------------


def big_headers(count: int = 90, size: int = 4000) -> dict[str, str]:
    return {f"X-Padding-{i}": "p" * size for i in range(count)}


def test_requests_for_unknown_paths_are_counted_not_stored(runner_site):
    answer = requests.post(f"{runner_site.url}/webhooks/fake/nothing/", data=b"{}", headers=big_headers(), timeout=10)

    assert answer.status_code == 404
    assert not WebhookEvent.objects.exists()
    from connections.models import WebhookRefusalCount

    assert WebhookRefusalCount.objects.get(scope="").refused == 1


def test_a_stored_refusal_keeps_bounded_headers(runner_site):
    body = b'{"action": "opened"}'
    headers = {**signed_headers(body, secret="not-the-secret"), **big_headers()}

    answer = post(runner_site, "signed", body, headers)

    assert answer.status_code == 401
    event = WebhookEvent.objects.get()
    assert event.reason == "signature does not match"
    assert len(event.headers) <= 50
    assert all(len(name) <= 100 and len(value) <= 1024 for name, value in event.headers.items())
    assert event.headers["x-signature"].startswith("sha256=")  # what explains the refusal is kept


def test_refusals_of_one_webhook_are_stored_up_to_the_hourly_cap_and_counted_beyond(runner_site, settings):
    settings.WORKERS_WEBHOOK_MAX_REFUSALS_PER_HOUR = 3
    body = b'{"action": "opened"}'

    codes = [post(runner_site, "signed", body, signed_headers(body, secret="guess")).status_code for _ in range(5)]

    assert codes == [401] * 5
    assert WebhookEvent.objects.filter(status="rejected").count() == 3
    from connections.models import WebhookRefusalCount

    count = WebhookRefusalCount.objects.get(scope="runner-test/signed")
    assert (count.refused, count.stored) == (5, 3)
    assert not Run.objects.exists()
    page = runner_site.admin_session().get(f"{runner_site.url}/admin/connections/webhookrefusalcount/", timeout=10)
    assert page.status_code == 200 and "runner-test/signed" in page.text


# --- a signed request is handled once -------------------------------------------------------------


@pytest.mark.parametrize(("hook", "sign"), [("signed", signed_headers), ("signedPlain", plain_signed_headers)])
def test_a_replayed_signed_request_is_answered_without_a_second_run(runner_site, celery_worker, hook, sign):
    body = json.dumps({"action": "opened", "number": 8}).encode()
    headers = sign(body)

    first = post(runner_site, hook, body, headers)
    again = post(runner_site, hook, body, headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "event": first.json()["event"], "run": first.json()["run"]}
    assert wait_for_run(first.json()["run"]).status == "succeeded"
    assert Run.objects.count() == 1 and WebhookEvent.objects.count() == 1


def test_concurrent_copies_of_a_signed_request_make_one_run(runner_site, celery_worker):
    body = json.dumps({"action": "opened", "number": 9}).encode()
    headers = signed_headers(body)
    answers: list[requests.Response] = []
    start = threading.Barrier(6)

    def send() -> None:
        start.wait()
        answers.append(post(runner_site, "signed", body, headers))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(a.status_code for a in answers) == [200] * 5 + [202]
    assert {a.json()["run"] for a in answers} == {Run.objects.get().pk}
    assert wait_for_run(Run.objects.get().pk).status == "succeeded"


@pytest.mark.parametrize("stamp", ["NaN", "nan", "inf", "-Infinity"])
def test_a_non_finite_timestamp_is_refused(runner_site, stamp):
    body = b'{"action": "opened"}'

    answer = post(runner_site, "signed", body, signed_headers(body, stamp=stamp))

    assert answer.status_code == 401
    assert "invalid timestamp header X-Timestamp" in answer.json()["reason"]
    assert not Run.objects.exists()


# --- bodies are read whole or refused -------------------------------------------------------------


def test_a_chunked_body_is_refused_with_411_by_a_server_that_cannot_read_it(runner_site):
    body = b'{"action": "opened"}'
    # A generator makes requests send the body chunked, without Content-Length.
    answer = requests.post(
        f"{runner_site.url}/webhooks/runner-test/checked/",
        data=iter([body[:5], body[5:]]),
        headers={"X-Token": "let-me-in"},
        timeout=10,
    )

    assert answer.status_code == 411
    assert "Content-Length" in answer.json()["reason"]
    assert not WebhookEvent.objects.filter(status="accepted").exists() and not Run.objects.exists()


def call_wsgi(body: bytes, headers: dict[str, str], path: str) -> tuple[str, dict]:
    """The site's WSGI application called as gunicorn calls it for a chunked request: the body
    de-chunked in `wsgi.input`, no CONTENT_LENGTH, and `wsgi.input_terminated` set."""
    from workers_site.wsgi import application

    environ: dict = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
    }
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})
    setup_testing_defaults(environ)
    environ.pop("CONTENT_LENGTH", None)
    status: list[str] = []
    chunks = application(environ, lambda line, _headers, *_: status.append(line))
    content = b"".join(chunks)
    return status[0], json.loads(content)


def test_a_chunked_body_is_read_whole_under_a_server_that_ends_the_input(runner_site, celery_worker):
    body = json.dumps({"action": "chunked", "number": 10}).encode()

    status, answer = call_wsgi(body, signed_headers(body), "/webhooks/runner-test/signed/")

    assert status.startswith("202"), answer
    assert bytes(WebhookEvent.objects.get(pk=answer["event"]).body) == body
    assert wait_for_run(answer["run"]).result["received"] == {"action": "chunked", "number": 10}


def test_a_chunked_body_over_the_limit_is_refused(runner_site, settings):
    settings.WORKERS_WEBHOOK_MAX_BODY = 1024
    body = json.dumps({"padding": "x" * 5000}).encode()

    status, answer = call_wsgi(body, signed_headers(body), "/webhooks/runner-test/signed/")

    assert status.startswith("413") and "over the 1024 byte limit" in answer["reason"]
    assert not Run.objects.exists()


# --- JSON that would break what reads it later ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"title": "\\ud800"}', "not valid Unicode"),
        (b'{"title": "\xed\xa0\x80"}', "not valid Unicode"),  # a surrogate encoded raw
        (b"[" * 5000 + b"]" * 5000, "nested more than 64 levels deep"),
        (b"[" * 100 + b"]" * 100, "nested more than 64 levels deep"),
    ],
    ids=["escaped surrogate", "raw surrogate", "5000 deep", "100 deep"],
)
def test_json_too_deep_or_with_invalid_unicode_is_a_400_recorded_as_a_refusal(runner_site, body, reason):
    answer = post(runner_site, "checked", body, {"X-Token": "let-me-in", "Content-Type": "application/json"})

    assert answer.status_code == 400
    assert reason in answer.json()["reason"]
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and reason in event.reason and bytes(event.body) == b""
    assert not Run.objects.exists()


def test_a_body_that_is_not_json_still_reaches_the_handler_as_an_empty_dict(runner_site, celery_worker):
    body = b"action=opened&number=11"

    answer = post(runner_site, "signedPlain", body, plain_signed_headers(body))

    assert answer.status_code == 202
    assert wait_for_run(answer.json()["run"]).result == {"received": {}}


# --- what review found: secrets in headers, hostile lengths and paths --------------------------


def test_a_shared_secret_in_a_header_is_checked_in_full_but_stored_blanked(runner_site, celery_worker):
    # 60 headers before it: verify() sees all of them, though only 50 are kept.
    padding = {f"X-Pad-{i:02d}": "p" for i in range(60)}
    answer = post(runner_site, "sharedToken", b"{}", {**padding, "X-Shared-Token": HOOK_SECRET})

    assert answer.status_code == 202, answer.text
    event = WebhookEvent.objects.get(pk=answer.json()["event"])
    assert HOOK_SECRET not in json.dumps(event.headers)
    run = wait_for_run(answer.json()["run"])
    assert run.status == "succeeded" and HOOK_SECRET not in json.dumps(run.result)


def test_a_huge_claimed_content_length_is_refused_and_recorded(runner_site):
    import http.client
    from urllib.parse import urlsplit

    # http.client, not requests: requests would write the true Content-Length over the claimed one.
    conn = http.client.HTTPConnection(urlsplit(runner_site.url).netloc, timeout=10)
    conn.putrequest("POST", "/webhooks/runner-test/checked/")
    conn.putheader("Content-Length", "3000000000")
    conn.putheader("X-Token", "let-me-in")
    conn.endheaders()
    answer = conn.getresponse()

    assert answer.status == 413
    assert WebhookEvent.objects.get().body_size == 2**31 - 1


@pytest.mark.parametrize("path", ["h%00x", "checked%00", "%1b%5b2J"])
def test_a_webhook_key_with_control_characters_is_unknown(runner_site, path):
    answer = requests.post(f"{runner_site.url}/webhooks/runner-test/{path}/", data=b"{}", timeout=10)

    assert answer.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_handlers_receive_the_types_the_sdk_exports(runner_site, celery_worker):
    # Worker code annotates `event: Event, context: RunContext` from connections.sdk; the handler
    # (on a real Celery worker) reports whether what it got is exactly those types.
    answer = post(runner_site, "typedHook", b"{}", {"Content-Type": "application/json"})

    assert answer.status_code == 202
    assert wait_for_run(answer.json()["run"]).result == {"event": True, "context": True}


def test_the_signature_is_checked_as_deployed(runner_site):
    # One source of truth at run time: the deployed row, as OAuth reads it. A deploy that moved
    # the signature to another header is what the request is checked against.
    hook = Webhook.objects.get(worker__slug="runner-test", key="signed")
    hook.signature = {**hook.signature, "header": "X-Other-Signature"}
    hook.save(update_fields=["signature"])
    body = b"{}"

    answer = post(runner_site, "signed", body, signed_headers(body))

    assert answer.status_code == 401 and "missing signature header X-Other-Signature" in answer.json()["reason"]
    assert not Run.objects.exists()


def test_the_signing_secret_is_read_for_each_request_and_one_not_set_is_a_503(runner_site, celery_worker):
    # Read with the webhook's row, by the name its deployed signature gives: unset, the request is
    # refused; rotated, the next request is checked against the new value.
    from connections.secrets import set_secrets, unset_secrets

    body = json.dumps({"action": "rotated", "number": 1}).encode()
    unset_secrets("runner-test", ["HOOK_SECRET"])

    unset = post(runner_site, "signed", body, signed_headers(body))

    assert unset.status_code == 503 and unset.json()["reason"] == "signing secret HOOK_SECRET is not set"
    rotated = "rotated-signing-secret-0123456789"
    set_secrets("runner-test", {"HOOK_SECRET": rotated})
    assert post(runner_site, "signed", body, signed_headers(body)).status_code == 401
    answer = post(runner_site, "signed", body, signed_headers(body, secret=rotated))
    assert answer.status_code == 202
    assert wait_for_run(answer.json()["run"]).status == "succeeded"
