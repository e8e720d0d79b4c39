"""What worker code imports: `from connections.sdk import Worker, j, schema, builder` (and `RunContext`, `Event`)."""

from ..exceptions import (
    InvalidToolInputError,
    PacerTimeout,
    ReauthorizationRequired,
    TimeLimitExceeded,
    TokenRefreshError,
    WebhookVerificationError,
)
from . import jsonschema as j
from .properties import builder, schema
from .types import Event, RunContext
from .worker import OAuthCapability, Pacer, SecretRef, Worker

__all__ = [
    "Event",
    "InvalidToolInputError",
    "OAuthCapability",
    "Pacer",
    "PacerTimeout",
    "ReauthorizationRequired",
    "RunContext",
    "SecretRef",
    "TimeLimitExceeded",
    "TokenRefreshError",
    "WebhookVerificationError",
    "Worker",
    "builder",
    "j",
    "schema",
]
