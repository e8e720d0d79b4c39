"""Webhooks: check a request (size, HMAC signature, timestamp, verify()), store it, handle it later."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from .. import registry
from ..conf import app_settings
from ..exceptions import MissingSecret, WebhookVerificationError, WorkerNotFound
from ..models import Run, Webhook, WebhookEvent
from ..secrets import get_secret
from . import runs
from .execute import perform

# Never stored with an event: they may carry the sender's credentials.
_UNSTORED_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}


@dataclass
class Event:
    """What a webhook's `verify(event)` and handler see."""

    body: Any
    raw_body: bytes
    headers: dict[str, str]
    method: str
    event_id: int | None = None
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    status: int
    reason: str
    event: WebhookEvent | None = None
    run: Run | None = None


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return {}


def _digest(secret: str, payload: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), payload, getattr(hashlib, algorithm)).hexdigest()


def check_signature(config: dict[str, Any], secret: str, raw: bytes, headers: dict[str, str], now: float) -> None:
    """Raise WebhookVerificationError unless the request is signed with `secret` (and recent, when timestamped).

    With a timestamp header the signed payload is `<timestamp>.<body>` (as Stripe does), so an old
    request cannot be replayed with a new timestamp.
    """
    provided = headers.get(config["header"].lower(), "")
    prefix = config.get("prefix") or ""
    if not provided:
        raise WebhookVerificationError(f"missing signature header {config['header']}")
    if prefix and not provided.startswith(prefix):
        raise WebhookVerificationError(f"signature header {config['header']} does not start with {prefix!r}")
    provided = provided[len(prefix) :].strip().lower()
    payload = raw
    timestamp_header = config.get("timestamp_header") or ""
    if timestamp_header:
        stamp = headers.get(timestamp_header.lower(), "").strip()
        try:
            seconds = float(stamp)
        except ValueError:
            raise WebhookVerificationError(f"missing or invalid timestamp header {timestamp_header}") from None
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        tolerance = config.get("tolerance") or app_settings.WEBHOOK_TOLERANCE
        if abs(now - seconds) > tolerance:
            raise WebhookVerificationError(f"timestamp outside the {int(tolerance)} s tolerance (replayed or stale)")
        payload = stamp.encode() + b"." + raw
    expected = _digest(secret, payload, config.get("algorithm") or "sha256")
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise WebhookVerificationError("signature does not match")


def _stored_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _UNSTORED_HEADERS}


def _reject(
    status: int, reason: str, *, path: str, method: str, headers: dict[str, str], size: int, hook: Webhook | None
) -> Answer:
    # The body of a refused request is not kept: it is unauthenticated, possibly large, possibly hostile.
    event = WebhookEvent.objects.create(
        webhook=hook,
        path=path[:300],
        method=method[:10],
        headers=_stored_headers(headers),
        body_size=size,
        status=WebhookEvent.Status.REJECTED,
        reason=reason[:300],
    )
    return Answer(status, reason, event)


def receive(
    worker: str,
    key: str,
    *,
    method: str,
    path: str,
    headers: dict[str, str],
    content_length: int | None,
    read_body: Any,
    query: dict[str, str] | None = None,
) -> Answer:
    """Decide on one webhook request; accepted events are stored and their handler queued."""
    headers = {k.lower(): v for k, v in headers.items()}
    request = {"path": path, "method": method, "headers": headers}
    hook = Webhook.objects.select_related("worker").filter(worker__slug=worker, key=key).first()
    if hook is None or not hook.is_active or not hook.worker.is_active:
        return _reject(404, "unknown webhook", size=content_length or 0, hook=None, **request)
    limit = app_settings.WEBHOOK_MAX_BODY
    if content_length is not None and content_length > limit:
        reason = f"body of {content_length} bytes is over the {limit} byte limit"
        return _reject(413, reason, size=content_length, hook=hook, **request)
    raw = read_body(limit + 1)
    if len(raw) > limit:
        return _reject(413, f"body is over the {limit} byte limit", size=len(raw), hook=hook, **request)
    try:
        definition = registry.get_webhook(worker, key)
    except WorkerNotFound:
        return _reject(404, "webhook no longer in the worker's code", size=len(raw), hook=hook, **request)
    config = definition.signature  # the code is the source of truth, as everywhere else
    event = Event(parse_body(raw), raw, _stored_headers(headers), method, query=dict(query or {}))
    try:
        if config:
            try:
                secret = get_secret(worker, config["secret"])
            except MissingSecret:
                reason = f"signing secret {config['secret']} is not set"
                return _reject(503, reason, size=len(raw), hook=hook, **request)
            check_signature(config, secret, raw, headers, time.time())
        if definition.verify is not None:
            definition.verify(event)
    except WebhookVerificationError as exc:
        return _reject(401, str(exc) or "verification failed", size=len(raw), hook=hook, **request)
    with transaction.atomic():
        stored = WebhookEvent.objects.create(
            webhook=hook,
            path=path[:300],
            method=method[:10],
            headers=_stored_headers(headers),
            body=raw,
            body_size=len(raw),
            status=WebhookEvent.Status.ACCEPTED,
        )
        run = runs.create_run(Run.Kind.WEBHOOK, hook.worker, key, trigger="webhook", webhook_event=stored)
        runs.send(run)
    return Answer(202, "accepted", stored, run)


def execute_webhook(run_id: int) -> runs.Outcome:
    """One attempt at handling a stored event with the webhook's function."""

    def body(run: Run, context: runs.RunContext) -> Any:
        stored = run.webhook_event
        if stored is None:
            raise WorkerNotFound(f"The event of run #{run.pk} was deleted.")
        handler = registry.get_webhook(run.worker.slug, run.target)
        raw = bytes(stored.body)
        event = Event(parse_body(raw), raw, dict(stored.headers), stored.method, stored.pk)
        return handler.func(event, context)

    return perform(run_id, body)
