"""The errors this app raises. Messages say what to do; they never carry a token, a secret or a raw body."""

from __future__ import annotations

from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded


class WorkersError(Exception):
    """Base of every error of this app."""


class WorkerDefinitionError(WorkersError):
    """A worker's code declares something invalid (duplicate key, bad endpoint, unknown type)."""


class WorkerNotFound(WorkersError):
    """No (active) worker, capability, tool, sync or webhook by that name."""


class EndpointChangeRefused(WorkersError):
    """Deploy would move a connected capability to other endpoints, and nobody confirmed it."""


class MissingSecret(WorkersError):
    """A capability refers to a secret that has not been set."""

    def __init__(self, worker: str, name: str) -> None:
        self.worker = worker
        self.name = name
        super().__init__(
            f"Secret {name} of worker {worker} is not set: "
            f"run `python manage.py workers env set {name}=...` (or set it in the admin)."
        )


class UndecryptableValue(WorkersError):
    """A stored value cannot be decrypted with the configured FIELD_ENCRYPTION_KEY."""


class ReauthorizationRequired(WorkersError):
    """The connection cannot produce a token until someone authorizes it again."""

    def __init__(self, capability: str, reason: str = "") -> None:
        self.capability = capability
        self.reason = reason
        hint = f"reconnect {capability} in the admin or run `python manage.py workers oauth start {capability}`"
        super().__init__(
            f"{capability} needs re-authorization ({reason}): {hint}."
            if reason
            else f"{capability} needs re-authorization: {hint}."
        )


class NotConnected(ReauthorizationRequired):
    """The capability has no connection to refresh: never connected, or disconnected since."""

    def __init__(self, capability: str, connect_url: str, *, ever: bool = False) -> None:
        self.connect_url = connect_url
        state = "was disconnected: connect it again" if ever else "is not connected yet: connect it"
        WorkersError.__init__(
            self,
            f"{capability} {state} in the admin at {connect_url} or run "
            f"`python manage.py workers oauth start {capability}`.",
        )
        # What ReauthorizationRequired's readers (retry rules, health) look at.
        self.capability = capability
        self.reason = "not connected"


class TokenRefreshError(WorkersError):
    """Refreshing a token failed. `retryable` says whether trying again later may help."""

    def __init__(
        self, capability: str, reason: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        self.capability = capability
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"Refreshing the token of {capability} failed: {reason}")


class AuthorizationError(WorkersError):
    """The authorization-code flow failed (bad callback, provider error, failed code exchange)."""

    def __init__(self, message: str, *, code: str = "invalid_request", capability: Any = None) -> None:
        self.code = code
        # The OAuthCapability the failed flow was for, when the callback got that far: its error
        # page then offers to try again.
        self.capability = capability
        super().__init__(message)


class InvalidToolInputError(WorkersError):
    """A tool's input (or output) does not match its schema."""

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(message)


class InvalidJSONError(WorkersError, ValueError):
    """JSON from outside is malformed, nested too deep, or holds text that is not valid Unicode."""


class WebhookVerificationError(WorkersError):
    """A webhook request failed its signature or verify() check; answered with 401."""


class RetryableError(WorkersError):
    """A run met a passing failure (429, 5xx); the task retries with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class InvalidSyncResult(WorkersError):
    """A sync's page is not `{"changes": [...], "has_more": bool, "next_state": ...}` as declared."""


class TimeLimitExceeded(WorkersError, SoftTimeLimitExceeded):
    """A tool or a sync page ran past its time limit (the soft one).

    Raised inside the code where it is (a sleep, a socket read), so it may clean up; it is also
    Celery's SoftTimeLimitExceeded, which code written for Celery already catches. Code that goes
    on anyway is killed at the hard limit.
    """

    def __str__(self) -> str:  # billiard's own wraps the message in a tuple's repr
        return Exception.__str__(self)


class RunCancelled(WorkersError):
    """Raised inside a running run's code when a person cancelled the run (see runner/cancel.py).

    Raised where the code is, as a time limit is, so it may clean up; code that goes on anyway is
    ended WORKERS_TIME_LIMIT_GRACE seconds later.
    """


class RunNotCancellable(WorkersError):
    """The run does not exist, or has already finished: there is nothing left to cancel."""


class PacerTimeout(RetryableError):
    """A pacer's queue is longer than the caller may wait (WORKERS_PACER_MAX_WAIT or wait(timeout=))."""


class PacerUnavailable(RetryableError):
    """The shared budget of a pacer (Redis or the database) cannot be reached, or the pacer is not deployed."""


class ApiKeyError(WorkersError):
    """An MCP API key cannot be created, found or revoked as asked (duplicate name, unknown tool, ...)."""


class InvalidApiKey(WorkersError):
    """A bearer key that is missing, unknown, revoked or expired. The message never holds the key."""
