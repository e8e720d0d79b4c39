"""HTTP calls to a provider's token and revocation endpoints (requests-oauthlib), with failures classified.

Every failure becomes a `ProviderError` whose message is safe to show and log: the provider's
error code and a bounded description, never a raw body, a token or a secret.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlparse

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from ..conf import app_settings
from ..models import OAuthCapability
from ..secrets import get_secret

# oauthlib refuses http:// outright; `check_transport` below enforces the same rule but allows
# loopback hosts (the sandbox provider and local test servers).
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

# Errors that a later retry may cure (RFC 6749 5.2 plus what providers send in practice).
RETRYABLE_OAUTH_ERRORS = {"temporarily_unavailable", "server_error", "slow_down"}
GRANT_GONE_ERRORS = {"invalid_grant", "bad_refresh_token"}
TOKEN_FIELDS = {"access_token", "refresh_token", "expires_in", "expires_at", "token_type", "scope"}


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
        self.error = error
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
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def scrub(text: str, sent: tuple[str, ...]) -> str:
    """Blank what we sent (a code, a refresh token, the client secret) should a provider echo it back."""
    for value in sent:
        if value and len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text


def _inspect(sent: tuple[str, ...]) -> Any:
    def hook(response: requests.Response) -> requests.Response:
        try:
            return _inspect_token_response(response)
        except ProviderError as exc:
            exc.description = scrub(exc.description, sent)
            raise ProviderError(
                exc.error, exc.description, status=exc.status, retryable=exc.retryable, retry_after=exc.retry_after
            ) from None

    return hook


def _inspect_token_response(response: requests.Response) -> requests.Response:
    """Compliance hook run before oauthlib parses: classify, and normalise the body to JSON."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise ProviderError(
            "unavailable",
            "the token endpoint is unavailable",
            status=status,
            retryable=True,
            retry_after=_retry_after(response),
        )
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    body = response.text
    data: Any = None
    try:
        data = json.loads(body)
    except ValueError:
        # GitHub answers form-encoded unless asked for JSON.
        if content_type in ("application/x-www-form-urlencoded", "text/plain") and "=" in body and "<" not in body:
            data = dict(parse_qsl(body.strip(), keep_blank_values=True))
    if not isinstance(data, dict):
        what = "an HTML page" if "html" in content_type or body.lstrip().startswith("<") else "an unreadable body"
        raise ProviderError("invalid_response", f"the token endpoint answered {what}", status=status, retryable=True)
    if data.get("error"):
        # GitHub reports errors with HTTP 200 and an `error` field.
        code = str(data["error"])
        raise ProviderError(
            code, str(data.get("error_description", "")), status=status, retryable=code in RETRYABLE_OAUTH_ERRORS
        )
    if status >= 400:
        raise ProviderError("http_error", "the token endpoint refused the request", status=status)
    if not data.get("access_token"):
        raise ProviderError("invalid_response", "the token response has no access_token", status=status, retryable=True)
    response._content = json.dumps(data).encode()
    response.headers["Content-Type"] = "application/json"
    response.encoding = "utf-8"
    return response


def _session(client_id: str, sent: tuple[str, ...], redirect_uri: str | None = None) -> OAuth2Session:
    # No scope on the session: oauthlib would raise when a provider grants a different scope.
    session = OAuth2Session(client_id=client_id, redirect_uri=redirect_uri)
    session.register_compliance_hook("access_token_response", _inspect(sent))
    session.register_compliance_hook("refresh_token_response", _inspect(sent))
    return session


def _to_token_response(capability: OAuthCapability, token: dict[str, Any], received_at: datetime) -> TokenResponse:
    scope = token.get("scope", "")
    if isinstance(scope, (list, tuple)):
        scope = " ".join(scope)
    expires_at = None
    expires_in = token.get("expires_in")
    try:
        if expires_in not in (None, ""):
            expires_at = received_at + timedelta(seconds=float(expires_in))
    except (TypeError, ValueError):
        expires_at = None
    if expires_at is None and capability.access_token_expire_ms:
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
            scrub(exc.description or "", sent),
            status=exc.status_code,
            retryable=(exc.error or "") in RETRYABLE_OAUTH_ERRORS,
        ) from None
    except requests.Timeout:
        raise ProviderError("timeout", f"no answer within {app_settings.HTTP_TIMEOUT:g} s", retryable=True) from None
    except requests.ConnectionError:
        raise ProviderError("connection_error", "could not connect to the token endpoint", retryable=True) from None
    except requests.RequestException as exc:
        raise ProviderError("request_error", type(exc).__name__, retryable=True) from None
    except (ValueError, KeyError) as exc:
        raise ProviderError(
            "invalid_response", f"unreadable token response ({type(exc).__name__})", retryable=True
        ) from None
    return _to_token_response(capability, token, received_at)


@sensitive_variables("code", "code_verifier", "client_secret", "sent")
def exchange_code(capability: OAuthCapability, code: str, redirect_uri: str, code_verifier: str = "") -> TokenResponse:
    """The authorization-code grant."""
    client_id, client_secret = client_credentials(capability)
    sent = (code, code_verifier, client_secret)
    session = _session(client_id, sent, redirect_uri)
    extra = {"code_verifier": code_verifier} if code_verifier else {}

    def do() -> dict[str, Any]:
        return session.fetch_token(
            capability.token_endpoint,
            code=code,
            client_secret=client_secret,
            include_client_id=True,
            timeout=app_settings.HTTP_TIMEOUT,
            **extra,
        )

    return _call(capability, do, sent)


@sensitive_variables("refresh_token", "client_secret", "sent")
def refresh(capability: OAuthCapability, refresh_token: str) -> TokenResponse:
    """The refresh-token grant. A response without a refresh token yields refresh_token == ""."""
    client_id, client_secret = client_credentials(capability)
    sent = (refresh_token, client_secret)
    session = _session(client_id, sent)

    def do() -> dict[str, Any]:
        token = session.refresh_token(
            capability.token_endpoint,
            refresh_token=refresh_token,
            timeout=app_settings.HTTP_TIMEOUT,
            client_id=client_id,
            client_secret=client_secret,
        )
        # requests-oauthlib fills in the old refresh token when none came back; undo that so the
        # caller knows, and keeps the stored one.
        if token.get("refresh_token") == refresh_token:
            token = {k: v for k, v in token.items() if k != "refresh_token"}
        return token

    return _call(capability, do, sent)


@sensitive_variables("token", "client_secret")
def revoke(capability: OAuthCapability, token: str, token_type_hint: str) -> None:
    """RFC 7009 revocation; raises ProviderError when the provider refuses."""
    endpoint = capability.revocation_endpoint
    if not endpoint:
        return
    check_transport(endpoint)
    client_id, client_secret = client_credentials(capability)
    try:
        response = requests.post(
            endpoint,
            data={
                "token": token,
                "token_type_hint": token_type_hint,
                "client_id": client_id,
                "client_secret": client_secret,
            },
            headers={"Accept": "application/json"},
            timeout=app_settings.HTTP_TIMEOUT,
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
