"""What worker code imports: `from connections.sdk import Worker, j, schema, builder`."""

from ..exceptions import (
    InvalidToolInputError,
    ReauthorizationRequired,
    TimeLimitExceeded,
    TokenRefreshError,
    WebhookVerificationError,
)
from . import jsonschema as j
from .properties import builder, schema
from .worker import OAuthCapability, SecretRef, Worker

__all__ = [
    "InvalidToolInputError",
    "OAuthCapability",
    "ReauthorizationRequired",
    "SecretRef",
    "TimeLimitExceeded",
    "TokenRefreshError",
    "WebhookVerificationError",
    "Worker",
    "builder",
    "j",
    "schema",
]
