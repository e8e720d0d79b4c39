"""HTTP calls to a provider's token and revocation endpoints (oauthlib prepares and parses), with failures classified.

Every failure becomes a `ProviderError` whose message is safe to show and log: the provider's
error code and a bounded description with control characters escaped, never a raw body, a token
or a secret. Each request has one deadline (WORKERS_HTTP_TIMEOUT) for connecting, the headers
and the whole body, and a size cap (WORKERS_TOKEN_MAX_BODY); a token answer is checked field by
field before anything of it is stored.
"""

from __future__ import annotations

import contextvars
import http.client
import ipaddress
import json
import logging
import math
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlparse

import requests
import urllib3
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauthlib.common import urldecode
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .. import jsondata
from ..conf import app_settings
from ..exceptions import InvalidJSONError
from ..logging import redact
from ..models import OAuthCapability
from ..retry_after import parse_retry_after
from ..secrets import get_secret
from ..text import printable

logger = logging.getLogger(__name__)

# Errors that a later retry may cure (RFC 6749 5.2 plus what providers send in practice).
RETRYABLE_OAUTH_ERRORS = {"temporarily_unavailable", "server_error", "slow_down"}
GRANT_GONE_ERRORS = {"invalid_grant", "bad_refresh_token"}
SCOPE_MAX_LENGTH = 2000  # Connection.granted_scope
TOKEN_FIELDS = {"access_token", "refresh_token", "expires_in", "expires_at", "token_type", "scope"}
# An `expires_in` outside this range (seconds) is not believed: the documented fallback applies
# (access_token_expire_ms, else unknown). Below it every call would refresh; above it the expiry
# overflows a datetime or means "never" in a roundabout way.
EXPIRES_IN_RANGE = (1.0, 10 * 366 * 24 * 3600.0)
# What RFC 6749 (appendix A.12, A.17) allows in an access or refresh token: printable ASCII.
_VSCHARS = re.compile(r"[\x20-\x7e]+")


class ProviderError(Exception):
    """A token or revocation request failed. `error` is the OAuth error code or our own label."""

    def __init__(
        self,
        error: str,
        description: str = "",
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        # Both may be the provider's own text: bounded, on one line, control characters escaped.
        self.error = _bounded(error, 80)
        self.description = _bounded(description)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.error
        if self.description:
            text += f": {self.description}"
        if self.status is not None:
            text += f" (HTTP {self.status})"
        return text

    @property
    def is_invalid_grant(self) -> bool:
        """The grant is gone: only a new authorization helps (GitHub says bad_refresh_token)."""
        return self.error in GRANT_GONE_ERRORS


@dataclass
class TokenResponse:
    access_token: str
    refresh_token: str = ""
    token_type: str = ""
    scope: str = ""
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _bounded(text: str, limit: int = 300) -> str:
    """Provider text made fit for a message: one line, at most `limit` characters, printable."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return printable(text)


def check_transport(url: str) -> None:
    """https everywhere, except http to this machine (the sandbox provider, local test servers)."""
    parsed = urlparse(url)
    if parsed.scheme == "https":
        return
    host = parsed.hostname or ""
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parsed.scheme == "http" and loopback:
        return
    raise ProviderError("insecure_transport", f"{parsed.scheme}://{host} is not https; tokens are only sent over https")


def client_credentials(capability: OAuthCapability) -> tuple[str, str]:
    """The client id and secret, resolved from the worker's secrets at use time."""
    slug = capability.worker.slug
    ref = capability.client_id or {}
    client_id = get_secret(slug, ref["secret"]) if ref.get("secret") else str(ref.get("value", ""))
    if capability.client_secret_ref:
        client_secret = get_secret(slug, capability.client_secret_ref)
    else:
        client_secret = capability.client_secret_literal
    return client_id, client_secret


# --- one deadline and a size cap per request ------------------------------------------------
#
# requests' timeout is per socket read: a body dripped a byte a second never trips it. A timer
# shuts the request's sockets down at the deadline instead, which ends any read blocked in any
# phase (TLS handshake, headers, body); the body is streamed and counted against the cap.

_deadline: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("workers_http_deadline", default=None)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Watched:
    """Hands each new socket to the request's deadline, which shuts it when time is up."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        deadline = _deadline.get()
        if deadline is not None:
            deadline.watch(sock)
        return sock


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """Opens connections whose sockets the current request's deadline can shut down."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _mount(session: requests.Session) -> requests.Session:
    adapter = _DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _too_large(limit: int, status: int | None) -> ProviderError:
    return ProviderError(
        "response_too_large",
        f"the endpoint answered more than {limit} bytes (WORKERS_TOKEN_MAX_BODY); nothing of it was kept",
        status=status,
    )


def _timed_out(deadline: _Deadline) -> ProviderError:
    return ProviderError(
        "timeout", f"no complete answer within {deadline.seconds:g} s (WORKERS_HTTP_TIMEOUT)", retryable=True
    )


def _read_body(response: requests.Response, deadline: _Deadline, limit: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, response.status_code)  # refused unread
    chunks: list[bytes] = []
    size = 0
    while True:
        # read1: what one socket read brings, so the deadline is looked at between reads.
        chunk = response.raw.read1(16 * 1024, decode_content=True)
        if deadline.expired:
            raise _timed_out(deadline)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _bounded_request(send: Callable[..., requests.Response], **kwargs: Any) -> tuple[requests.Response, bytes]:
    """`send(**kwargs)` streamed under one deadline: (response, its whole body), or ProviderError."""
    deadline = _Deadline(app_settings.HTTP_TIMEOUT)
    limit = app_settings.TOKEN_MAX_BODY
    headers = dict(kwargs.pop("headers", None) or {})
    headers["Accept-Encoding"] = "identity"  # what we count is what came over the wire
    kwargs.update(headers=headers, stream=True, timeout=deadline.seconds)
    context = _deadline.set(deadline)
    response: requests.Response | None = None
    try:
        response = send(**kwargs)
        body = _read_body(response, deadline, limit)
    except ProviderError:
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        if deadline.expired or isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            raise _timed_out(deadline) from None
        if isinstance(exc, requests.RequestException) and not isinstance(exc, requests.ConnectionError):
            raise
        raise ProviderError(
            "connection_error", "could not connect to the endpoint or read its answer", retryable=True
        ) from None
    finally:
        deadline.cancel()
        _deadline.reset(context)
        if response is not None:
            response.close()
    return response, body


@sensitive_variables("body", "sent")
def _token_request(capability: OAuthCapability, client: WebApplicationClient, body: str, sent: tuple[str, ...]) -> Any:
    """POST a token request that oauthlib prepared; the answer is checked field by field
    (`read_token_response`) before oauthlib parses it.

    The POST is ours, not requests-oauthlib's `fetch_token`: that one allows http:// only through a
    process-wide OAUTHLIB_INSECURE_TRANSPORT, and normalising an answer there means rewriting the
    response's body in a compliance hook. `check_transport` (in `_call`) decides http:// instead:
    loopback hosts only.
    """
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    with _mount(requests.Session()) as session:
        response, raw = _bounded_request(
            lambda **kw: session.post(capability.token_endpoint, **kw), data=dict(urldecode(body)), headers=headers
        )
    try:
        data = read_token_response(response.status_code, response.headers, raw)
    except ProviderError as exc:
        # Should a provider echo what we sent (a code, a refresh token, the client secret).
        raise ProviderError(
            exc.error,
            redact(exc.description, sent, min_length=4, only_values=True),
            status=exc.status,
            retryable=exc.retryable,
            retry_after=exc.retry_after,
        ) from None
    return client.parse_request_body_response(json.dumps(data))


def read_token_response(status: int, headers: Any, raw: bytes) -> dict[str, Any]:
    """A token endpoint's answer as checked fields, or ProviderError: classify, parse (JSON or form), check.

    `raw` is the body as received (already bounded by WORKERS_TOKEN_MAX_BODY); `headers` needs `.get`.
    """
    if status == 429 or status >= 500:
        raise ProviderError(
            "unavailable",
            "the token endpoint is unavailable",
            status=status,
            retryable=True,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    body = raw.decode("utf-8", errors="replace")
    data: Any = None
    if body.lstrip().startswith(("{", "[")):
        try:
            data = jsondata.loads(raw, what="the token response")
        except InvalidJSONError as exc:
            raise ProviderError("invalid_response", str(exc).rstrip("."), status=status, retryable=True) from None
    elif content_type in ("application/x-www-form-urlencoded", "text/plain") and "=" in body and "<" not in body:
        # GitHub answers form-encoded unless asked for JSON.
        data = dict(parse_qsl(body.strip(), keep_blank_values=True))
    if not isinstance(data, dict):
        what = "an HTML page" if "html" in content_type or body.lstrip().startswith("<") else "an unreadable body"
        raise ProviderError("invalid_response", f"the token endpoint answered {what}", status=status, retryable=True)
    if data.get("error"):
        # GitHub reports errors with HTTP 200 and an `error` field.
        code = data["error"] if isinstance(data["error"], str) else "invalid_response"
        description = data.get("error_description", "")
        raise ProviderError(
            code,
            description if isinstance(description, str) else "",
            status=status,
            retryable=code in RETRYABLE_OAUTH_ERRORS,
        )
    if status >= 400:
        raise ProviderError("http_error", "the token endpoint refused the request", status=status)
    _check_token_fields(data, status)
    return data


def _check_token_fields(data: dict[str, Any], status: int) -> None:
    """Refuse a token answer we could only store wrongly; fix up the fields with a documented fallback."""

    def refuse(error: str, description: str) -> ProviderError:
        # Not retryable: the provider answered, deliberately, something we cannot use.
        return ProviderError(error, description, status=status)

    access_token = data.get("access_token")
    if access_token is None or access_token == "":
        raise ProviderError("invalid_response", "the token response has no access_token", status=status, retryable=True)
    if not isinstance(access_token, str) or not access_token.strip():
        raise refuse("invalid_response", "the access_token in the token response is not a non-empty string")
    if not _VSCHARS.fullmatch(access_token):
        # RFC 6749 A.12; a line break here would end up inside an Authorization header.
        raise refuse("invalid_response", "the access_token in the token response holds characters no token has")
    refresh_token = data.get("refresh_token")
    if refresh_token is not None and not (isinstance(refresh_token, str) and _VSCHARS.fullmatch(refresh_token or " ")):
        raise refuse("invalid_response", "the refresh_token in the token response is not a string of token characters")
    token_type = data.get("token_type")
    if token_type is None or token_type == "":
        data["token_type"] = "Bearer"  # RFC 6749 makes it required; GitHub's form answers aside, bearer is meant
    elif not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = _bounded(token_type, 40) if isinstance(token_type, str) else f"non-text ({type(token_type).__name__})"
        raise refuse(
            "unsupported_token_type",
            f"the provider issued a token of type {shown}; only bearer tokens are supported",
        )
    scope = data.get("scope")
    if scope is not None and not (
        isinstance(scope, str) or (isinstance(scope, list) and all(isinstance(s, str) for s in scope))
    ):
        raise refuse("invalid_response", "the scope in the token response is neither text nor a list of text")
    text = " ".join(scope) if isinstance(scope, list) else (scope or "")
    # Stored in a 2,000-character column; PostgreSQL refuses longer text and NUL alike.
    if len(text) > SCOPE_MAX_LENGTH or not text.isprintable():
        raise refuse("invalid_response", "the scope in the token response is too long or holds control characters")
    if "expires_in" in data:
        seconds = expires_in_seconds(data["expires_in"])
        if seconds is None:
            logger.warning(
                "The token endpoint sent an unusable expires_in (%s); using the fallback lifetime",
                type(data["expires_in"]).__name__,
            )
            del data["expires_in"]
        else:
            data["expires_in"] = seconds
    data.pop("expires_at", None)  # ours is computed from expires_in; a provider's could be anything


def expires_in_seconds(value: Any) -> float | None:
    """`expires_in` as finite seconds within EXPIRES_IN_RANGE, or None (then the fallback applies)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()[:40]
    if not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    low, high = EXPIRES_IN_RANGE
    if not math.isfinite(seconds) or not low <= seconds <= high:
        return None
    return seconds


def _to_token_response(capability: OAuthCapability, token: dict[str, Any], received_at: datetime) -> TokenResponse:
    scope = token.get("scope", "")
    if isinstance(scope, (list, tuple)):
        scope = " ".join(scope)
    expires_at = None
    seconds = expires_in_seconds(token.get("expires_in"))
    if seconds is not None:
        expires_at = received_at + timedelta(seconds=seconds)
    elif capability.access_token_expire_ms:
        expires_at = received_at + timedelta(milliseconds=capability.access_token_expire_ms)
    return TokenResponse(
        access_token=str(token["access_token"]),
        refresh_token=str(token.get("refresh_token") or ""),
        token_type=str(token.get("token_type") or ""),
        scope=str(scope or ""),
        expires_at=expires_at,
        extra={k: v for k, v in token.items() if k not in TOKEN_FIELDS},
    )


def _call(capability: OAuthCapability, do: Any, sent: tuple[str, ...]) -> TokenResponse:
    check_transport(capability.token_endpoint)
    received_at = timezone.now()
    try:
        token = do()
    except ProviderError:
        raise
    except OAuth2Error as exc:  # raised by oauthlib's own parsing
        raise ProviderError(
            exc.error or "invalid_response",
            redact(exc.description or "", sent, min_length=4, only_values=True),
            status=exc.status_code,
            retryable=(exc.error or "") in RETRYABLE_OAUTH_ERRORS,
        ) from None
    except requests.Timeout:
        raise ProviderError("timeout", f"no answer within {app_settings.HTTP_TIMEOUT:g} s", retryable=True) from None
    except requests.ConnectionError:
        raise ProviderError("connection_error", "could not connect to the token endpoint", retryable=True) from None
    except requests.RequestException as exc:
        raise ProviderError("request_error", type(exc).__name__, retryable=True) from None
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise ProviderError(
            "invalid_response", f"unreadable token response ({type(exc).__name__})", retryable=True
        ) from None
    return _to_token_response(capability, token, received_at)


@sensitive_variables("code", "code_verifier", "client_secret", "sent")
def exchange_code(capability: OAuthCapability, code: str, redirect_uri: str, code_verifier: str = "") -> TokenResponse:
    """The authorization-code grant."""
    client_id, client_secret = client_credentials(capability)
    sent = (code, code_verifier, client_secret)
    client = WebApplicationClient(client_id)  # no scope: oauthlib would raise when a provider grants another
    extra = {"code_verifier": code_verifier} if code_verifier else {}

    def do() -> dict[str, Any]:
        body = client.prepare_request_body(
            code=code, redirect_uri=redirect_uri, include_client_id=True, client_secret=client_secret, **extra
        )
        return _token_request(capability, client, body, sent)

    return _call(capability, do, sent)


@sensitive_variables("refresh_token", "client_secret", "sent")
def refresh(capability: OAuthCapability, refresh_token: str) -> TokenResponse:
    """The refresh-token grant. A response without a refresh token yields refresh_token == ""."""
    client_id, client_secret = client_credentials(capability)
    sent = (refresh_token, client_secret)
    client = WebApplicationClient(client_id)  # no scope: oauthlib would raise when a provider grants another

    def do() -> dict[str, Any]:
        body = client.prepare_refresh_body(
            refresh_token=refresh_token, client_id=client_id, client_secret=client_secret
        )
        token = dict(_token_request(capability, client, body, sent))
        # The same refresh token sent back is no new one: the caller keeps the stored one.
        if token.get("refresh_token") == refresh_token:
            del token["refresh_token"]
        return token

    return _call(capability, do, sent)


@sensitive_variables("token", "client_secret", "data")
def revoke(capability: OAuthCapability, token: str, token_type_hint: str) -> None:
    """RFC 7009 revocation; raises ProviderError when the provider refuses."""
    endpoint = capability.revocation_endpoint
    if not endpoint:
        return
    check_transport(endpoint)
    client_id, client_secret = client_credentials(capability)
    data = {"token": token, "token_type_hint": token_type_hint, "client_id": client_id, "client_secret": client_secret}
    with _mount(requests.Session()) as session:
        try:
            response, _ = _bounded_request(
                lambda **kw: session.post(endpoint, **kw), data=data, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            raise ProviderError("connection_error", type(exc).__name__, retryable=True) from None
    # RFC 7009: 200 for a token revoked or unknown; 503 asks to retry later.
    if response.status_code != 200:
        raise ProviderError(
            "revocation_failed",
            "the revocation endpoint refused the request",
            status=response.status_code,
            retryable=response.status_code >= 500,
        )
