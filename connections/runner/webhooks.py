"""Webhooks: check a request (size, HMAC signature, timestamp, JSON, verify()), store it once, handle it later.

What an unauthenticated sender can make us store is bounded: requests for unknown paths are only
counted (`WebhookRefusalCount`) and logged; refusals of a known webhook are stored without their
body, with capped headers, and at most `WEBHOOK_MAX_REFUSALS_PER_HOUR` per webhook and hour.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .. import jsondata, registry
from ..conf import app_settings
from ..exceptions import InvalidJSONError, WebhookVerificationError, WorkerNotFound
from ..logging import redact
from ..models import Run, Webhook, WebhookEvent, WebhookRefusalCount
from ..sdk.types import Event
from ..secrets import decrypted
from . import runs, statements
from .capture import known_secrets
from .execute import perform

logger = logging.getLogger("connections.webhooks")

# Never stored with an event: they may carry the sender's credentials.
_UNSTORED_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}
_HEADER_NAME_LIMIT = 100
_CUT_MARK = "...[cut]"


@dataclass
class Answer:
    status: int
    reason: str
    event: WebhookEvent | None = None
    run: Run | None = None
    duplicate: bool = False


# What the view hands over to read the body: `read(n)` gives at most n bytes. None when the body's
# length is unknown and this server cannot read it to its end (chunked, under runserver): 411.
BodyReader = Callable[[int], bytes]


def parse_body(raw: bytes) -> Any:
    """The body as JSON, or {} when it is not JSON; InvalidJSONError when it is JSON too deep or with bad text."""
    if not raw:
        return {}
    what = "The webhook's JSON body"
    try:
        value = json.loads(raw)  # bytes: UTF-8/16/32 detected as the JSON RFC says
    except RecursionError:
        return jsondata.loads(raw, what=what)  # raises, naming the depth limit
    except (ValueError, UnicodeDecodeError):
        return {}  # not JSON: the handler still has raw_body
    return jsondata.check(value, what=what)


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
    timestamp_header = config.get("timestamp_header") or ""
    if timestamp_header:
        stamp = headers.get(timestamp_header.lower(), "").strip()
        try:
            seconds = float(stamp)
        except ValueError:
            seconds = math.nan
        # NaN compares false with everything, so it would pass any tolerance check and never expire.
        if not math.isfinite(seconds):
            raise WebhookVerificationError(f"missing or invalid timestamp header {timestamp_header}")
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        tolerance = config.get("tolerance") or app_settings.WEBHOOK_TOLERANCE
        if abs(now - seconds) > tolerance:
            raise WebhookVerificationError(f"timestamp outside the {int(tolerance)} s tolerance (replayed or stale)")
    expected = _digest(secret, signed_payload(config, raw, headers), config.get("algorithm") or "sha256")
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise WebhookVerificationError("signature does not match")


def signed_payload(config: dict[str, Any], raw: bytes, headers: dict[str, str]) -> bytes:
    """What the signature covers: `<timestamp>.<body>` with a timestamp header, else the body."""
    timestamp_header = config.get("timestamp_header") or ""
    if not timestamp_header:
        return raw
    return headers.get(timestamp_header.lower(), "").strip().encode() + b"." + raw


def replay_digest(worker: str, key: str, payload: bytes) -> str:
    """Identifies "the same signed request" for one webhook.

    The digest is of what the signature covers, not of the signature header's text: the header can
    be respelled (case, spaces) without breaking it, the signed payload cannot. With a timestamp the
    same body sent again later is a new request; without one, the same body is the same request.
    """
    return hashlib.sha256(f"{worker}/{key}\n".encode() + payload).hexdigest()


def stored_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers kept with an event: no credentials, at most WEBHOOK_MAX_HEADERS, each value cut to
    WEBHOOK_MAX_HEADER_LENGTH characters (names to 100), so one request cannot fill the disk."""
    count, length = app_settings.WEBHOOK_MAX_HEADERS, app_settings.WEBHOOK_MAX_HEADER_LENGTH
    kept: dict[str, str] = {}
    for name, value in headers.items():
        if name in _UNSTORED_HEADERS:
            continue
        if len(kept) >= count:
            break
        if len(value) > length:
            value = value[: max(0, length - len(_CUT_MARK))] + _CUT_MARK
        kept[name[:_HEADER_NAME_LIMIT]] = value
    return kept


def _this_hour() -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def _count_refusal(scope: str) -> WebhookRefusalCount:
    """Add one refusal to this hour's count for `scope`; call inside a transaction (the row stays locked)."""
    hour = _this_hour()
    rows = WebhookRefusalCount.objects.filter(scope=scope, hour=hour)
    if not rows.update(refused=F("refused") + 1):
        try:
            with transaction.atomic():
                return WebhookRefusalCount.objects.create(scope=scope, hour=hour, refused=1)
        except IntegrityError:  # created meanwhile by a concurrent refusal
            rows.update(refused=F("refused") + 1)
    return rows.get()


def _reject(
    status: int, reason: str, *, path: str, method: str, headers: dict[str, str], size: int, hook: Webhook | None
) -> Answer:
    """Refuse a request: counted always, logged, and stored (never with its body) while under the hourly cap."""
    scope = f"{hook.worker.slug}/{hook.key}" if hook is not None else ""
    with transaction.atomic():
        counter = _count_refusal(scope)
        # Unknown paths are never stored: anyone can make up as many as they like.
        store = hook is not None and counter.stored < app_settings.WEBHOOK_MAX_REFUSALS_PER_HOUR
        event = None
        if store:
            # The body of a refused request is not kept: it is unauthenticated, possibly large, possibly hostile.
            event = WebhookEvent.objects.create(
                webhook=hook,
                path=path[:300],
                method=method[:10],
                headers=stored_headers(headers),
                body_size=min(size, 2**31 - 1),  # a claimed Content-Length: PostgreSQL's integer ends there
                status=WebhookEvent.Status.REJECTED,
                reason=reason[:300],
            )
            WebhookRefusalCount.objects.filter(pk=counter.pk).update(stored=F("stored") + 1)
    logger.warning(
        "Webhook request refused (%s): %s %r: %s%s",
        status,
        method[:10],
        jsondata.clean_text(path[:300]),
        reason,
        "" if store else f" (not stored; {counter.refused} refused this hour for {scope or 'unknown paths'})",
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
    read_body: BodyReader | None,
    query: dict[str, str] | None = None,
) -> Answer:
    """Decide on one webhook request; an accepted event is stored and its handler queued, once.

    `content_length` is None when the sender did not say (chunked); `read_body` is None when the
    server cannot read such a body to its end, which is answered 411 rather than taken as empty.
    """
    headers = {k.lower(): v for k, v in headers.items()}
    request = {"path": path, "method": method, "headers": headers}
    if not (worker.isprintable() and key.isprintable()):
        # `<str:webhook>` lets %00 through, which PostgreSQL refuses in a query: no such webhook.
        return _reject(404, "unknown webhook", size=content_length or 0, hook=None, **request)
    found = statements.webhook_row(worker, key)
    hook, signing_ciphertext = found or (None, None)
    if hook is None or not hook.is_active or not hook.worker.is_active:
        return _reject(404, "unknown webhook", size=content_length or 0, hook=None, **request)
    limit = app_settings.WEBHOOK_MAX_BODY
    if content_length is not None and content_length > limit:
        reason = f"body of {content_length} bytes is over the {limit} byte limit"
        return _reject(413, reason, size=content_length, hook=hook, **request)
    if read_body is None:
        reason = "a body without Content-Length (chunked) cannot be read by this server: send Content-Length"
        return _reject(411, reason, size=0, hook=hook, **request)
    try:
        raw = read_body(limit + 1)
    except OSError:  # the sender went away, or its chunked encoding is broken (gunicorn raises IOErrors)
        return _reject(400, "the body could not be read to its end", size=0, hook=hook, **request)
    if len(raw) > limit:
        return _reject(413, f"body is over the {limit} byte limit", size=len(raw), hook=hook, **request)
    try:
        definition = registry.get_webhook(worker, key)
    except WorkerNotFound:
        return _reject(404, "webhook no longer in the worker's code", size=len(raw), hook=hook, **request)
    config = hook.signature  # the deployed row, as everywhere at run time (README: one source of truth)
    if definition.verify is not None:
        # verify() may compare a header with one of the worker's secrets (a shared token, as GitLab
        # sends): it sees the headers as sent, but what is stored has such values blanked.
        secrets = known_secrets(worker)
        request["headers"] = {name: redact(value, secrets) for name, value in headers.items()}
    digest = None
    try:
        if config:
            if signing_ciphertext is None:  # read with the webhook's row, by the name in its `signature`
                reason = f"signing secret {config['secret']} is not set"
                return _reject(503, reason, size=len(raw), hook=hook, **request)
            secret = decrypted(signing_ciphertext)
            check_signature(config, secret, raw, headers, time.time())
            digest = replay_digest(worker, key, signed_payload(config, raw, headers))
        event = Event(parse_body(raw), raw, dict(headers), method, query=dict(query or {}))
        if definition.verify is not None:
            definition.verify(event)
    except WebhookVerificationError as exc:
        return _reject(401, str(exc) or "verification failed", size=len(raw), hook=hook, **request)
    except InvalidJSONError as exc:
        return _reject(400, str(exc), size=len(raw), hook=hook, **request)
    # A signed request stored before is answered as it was, without a second run: the event's unique
    # digest refuses its copy (two copies arriving together included), and the earlier one is read.
    for _ in range(2):
        stored = WebhookEvent(
            webhook=hook,
            path=path[:300],
            method=method[:10],
            headers=stored_headers(request["headers"]),
            body=raw,
            body_size=len(raw),
            status=WebhookEvent.Status.ACCEPTED,
            replay_digest=digest,
        )
        run = runs.create_webhook_run(stored, hook.worker, key, trigger="webhook")
        if run is not None:
            return Answer(202, "accepted", stored, run)
        if digest is not None and (earlier := _handled(digest)) is not None:
            return earlier
    # Refused as a copy twice, yet no earlier event is there (purged between the two each time).
    return _reject(
        503,
        "a copy of this request was being stored at the same time: send it again",
        size=len(raw),
        hook=hook,
        **request,
    )


def _handled(digest: str) -> Answer | None:
    """The answer for a signed request that was accepted before: handled once, so no second run."""
    found = statements.event_with_digest(digest)
    # None too when the event was purged since (retention): the request is then taken as new.
    earlier = WebhookEvent.objects.filter(pk=found).first() if found is not None else None
    if earlier is None:
        return None
    run = earlier.runs.order_by("pk").first()
    logger.warning("Webhook request is a replay of event #%s: not handled again", earlier.pk)
    return Answer(200, "duplicate", earlier, run, duplicate=True)


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
