"""The authorization-code flow: build the authorization URL (state + PKCE), then complete it at the callback.

`state` is 256 random bits, stored only as a hash, single-use, expiring after WORKERS_STATE_TTL
seconds, and, when the flow starts in the admin, bound to that admin's session.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2.rfc6749.clients.base import Client as OAuthlibClient
from oauthlib.oauth2.rfc6749.utils import list_to_scope

from ..conf import app_settings
from ..exceptions import AuthorizationError, MissingSecret
from ..models import AuthorizationAttempt, Connection, OAuthCapability
from . import client
from .client import ProviderError
from .locks import refresh_lock
from .tokens import store_tokens

logger = logging.getLogger(__name__)

SESSION_KEY = "connections_oauth_states"

# RFC 6749 4.1.2.1 error codes, explained for the person who just clicked.
AUTHORIZATION_ERRORS = {
    "access_denied": "the authorization was denied at the provider",
    "invalid_request": "the provider says the authorization request is malformed",
    "unauthorized_client": "the provider does not allow this client to use the authorization-code flow",
    "unsupported_response_type": "the provider does not support the authorization-code flow",
    "invalid_scope": "the provider rejected the requested scope",
    "server_error": "the provider had an internal error",
    "temporarily_unavailable": "the provider is temporarily unavailable",
}


@dataclass
class Started:
    url: str
    attempt: AuthorizationAttempt


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start_authorization(capability: OAuthCapability, *, origin: str, user: Any = None, session: Any = None) -> Started:
    """Create an attempt and return the provider's authorization URL.

    With `session` (the admin's), the state is remembered there and the callback must come back
    in the same session.
    """
    if not capability.is_active:
        raise AuthorizationError(f"{capability.key} is no longer in the worker's code (inactive).")
    try:
        client_id, _ = client.client_credentials(capability)
    except MissingSecret as exc:
        raise AuthorizationError(str(exc), code="missing_secret") from None
    try:
        client.check_transport(capability.authorization_endpoint)
        client.check_transport(capability.token_endpoint)
    except ProviderError as exc:
        raise AuthorizationError(f"Cannot connect {capability.key}: {exc.message}.", code=exc.error) from None
    state = secrets.token_urlsafe(32)
    verifier = ""
    # RFC 6749 4.1.1 in oauthlib's order; built here rather than by oauthlib's prepare_grant_uri,
    # which allows http:// only through a process-wide OAUTHLIB_INSECURE_TRANSPORT (check_transport
    # above decides instead: loopback hosts only).
    query = [("response_type", "code"), ("client_id", client_id), ("redirect_uri", app_settings.REDIRECT_URL)]
    if capability.scope.split():
        query.append(("scope", list_to_scope(capability.scope.split())))
    query.append(("state", state))
    if capability.use_pkce:
        helper = OAuthlibClient(client_id)
        verifier = helper.create_code_verifier(64)
        query += [("code_challenge", helper.create_code_challenge(verifier, "S256")), ("code_challenge_method", "S256")]
    query += [(str(name), value) for name, value in (capability.authorization_params or {}).items() if value]
    url = add_params_to_uri(capability.authorization_endpoint, query)
    attempt = AuthorizationAttempt.objects.create(
        capability=capability,
        state_hash=_hash(state),
        code_verifier=verifier,
        origin=origin,
        user=user if getattr(user, "is_authenticated", False) else None,
        expires_at=timezone.now() + timedelta(seconds=app_settings.STATE_TTL),
    )
    if session is not None:
        pending = [h for h in session.get(SESSION_KEY, []) if h][-19:]
        session[SESSION_KEY] = [*pending, attempt.state_hash]
    return Started(url=url, attempt=attempt)


def complete_authorization(params: dict[str, str], *, session: Any = None, user: Any = None) -> AuthorizationAttempt:
    """Handle the callback's query: exchange the code and store the token, or raise AuthorizationError.

    Nothing is stored, and an existing token is left untouched, unless the whole exchange succeeds.
    """
    state = params.get("state", "")
    if not state:
        raise AuthorizationError(
            "The callback has no state parameter; start the connection again.", code="missing_state"
        )
    state_hash = _hash(state)
    attempt = AuthorizationAttempt.objects.select_related("capability__worker").filter(state_hash=state_hash).first()
    if attempt is None:
        raise AuthorizationError(
            "This authorization link is unknown; start the connection again.", code="unknown_state"
        )
    if attempt.status != AuthorizationAttempt.Status.PENDING or attempt.completed_at is not None:
        raise AuthorizationError(
            "This authorization link was already used; start the connection again.",
            code="reused_state",
            capability=attempt.capability,
        )
    if attempt.origin == AuthorizationAttempt.Origin.ADMIN:
        remembered = session.get(SESSION_KEY, []) if session is not None else []
        same_user = user is not None and getattr(user, "pk", None) == attempt.user_id
        if state_hash not in remembered or not same_user:
            raise AuthorizationError(
                "This authorization was started in another browser session; start it again from the admin.",
                code="session_mismatch",
                capability=attempt.capability,
            )
    # Claim it (still pending, completed_at set: the exchange is under way). A second callback
    # with the same state (a replay, a double click) loses here.
    claimed = AuthorizationAttempt.objects.filter(
        pk=attempt.pk, status=AuthorizationAttempt.Status.PENDING, completed_at__isnull=True
    ).update(completed_at=timezone.now())
    if not claimed:
        raise AuthorizationError(
            "This authorization link was already used; start the connection again.",
            code="reused_state",
            capability=attempt.capability,
        )
    if session is not None and state_hash in session.get(SESSION_KEY, []):
        session[SESSION_KEY] = [h for h in session[SESSION_KEY] if h != state_hash]
    try:
        if attempt.expires_at <= timezone.now():
            raise AuthorizationError(
                "This authorization link expired (after "
                f"{app_settings.STATE_TTL // 60} minutes); start the connection again.",
                code="expired_state",
            )
        capability = attempt.capability
        _finish(attempt, params)
    except AuthorizationError as exc:
        _close(attempt, AuthorizationAttempt.Status.FAILED, str(exc))
        exc.capability = attempt.capability
        raise
    except Exception as exc:
        # Whatever broke, the attempt is closed (the CLI stops waiting) and the page stays clear;
        # only the exception's type is logged, since its text may quote a response.
        logger.error("Completing the authorization of %s failed: %s", attempt.capability, type(exc).__name__)
        message = (
            f"Connecting {attempt.capability.key} failed because of an internal error ({type(exc).__name__}); "
            "the server log has the details. Nothing was stored."
        )
        _close(attempt, AuthorizationAttempt.Status.FAILED, message)
        failure = AuthorizationError(message, code="internal_error")
        failure.capability = attempt.capability
        raise failure from None
    _close(attempt, AuthorizationAttempt.Status.SUCCEEDED, "")
    logger.info("Connected %s", capability)
    return attempt


@sensitive_variables("params", "code", "answer")
def _finish(attempt: AuthorizationAttempt, params: dict[str, str]) -> None:
    capability = attempt.capability
    error = params.get("error", "")
    if error:
        explanation = AUTHORIZATION_ERRORS.get(error, "the provider reported an error")
        # Both come from the query string: whoever sent the browser here chose them.
        error = client._bounded(error, 80)
        description = client._bounded(params.get("error_description", ""), 200)
        raise AuthorizationError(
            f"Connecting {capability.key} failed: {explanation} ({error}"
            + (f": {description}" if description else "")
            + ").",
            code=error,
        )
    code = params.get("code", "")
    if not code:
        raise AuthorizationError(
            f"Connecting {capability.key} failed: the provider sent no authorization code.", code="missing_code"
        )
    try:
        answer = client.exchange_code(capability, code, app_settings.REDIRECT_URL, attempt.code_verifier)
    except ProviderError as exc:
        raise AuthorizationError(
            f"Connecting {capability.key} failed: the provider refused the code exchange ({exc.message}).",
            code=exc.error,
        ) from None
    except MissingSecret as exc:
        raise AuthorizationError(str(exc), code="missing_secret") from None
    conn, _ = Connection.objects.get_or_create(capability=capability)
    with refresh_lock(conn.pk, capability.key) as locked:
        store_tokens(locked, answer, refreshed=False)


def _close(attempt: AuthorizationAttempt, status: str, error: str) -> None:
    # The verifier is useless after the callback; it is not kept.
    AuthorizationAttempt.objects.filter(pk=attempt.pk).update(
        status=status, error=error, code_verifier="", completed_at=timezone.now()
    )


__all__ = ["AuthorizationError", "complete_authorization", "start_authorization"]
