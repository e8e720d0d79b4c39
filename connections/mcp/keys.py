"""MCP API keys: created once and shown once, stored as a SHA-256, checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..exceptions import ApiKeyError, InvalidApiKey
from ..models import ApiKey

KEY_PREFIX = "wmcp_"
# Writing last_used_at on every request would make each MCP message a database write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_key(raw: str) -> str:
    # A random 256-bit key needs no slow hash: nobody can guess it from its SHA-256 (as GitHub tokens).
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(
    name: str,
    *,
    workers: list[str] | None = None,
    tools: list[str] | None = None,
    read_only: bool = False,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its text, which is never stored and cannot be shown again."""
    from .catalog import check_scope

    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise ApiKeyError("An API key name is 1 to 100 printable characters.")
    workers, tools = check_scope(workers or [], tools or [])
    public = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    try:
        with transaction.atomic():
            key = ApiKey.objects.create(
                name=name,
                prefix=f"{KEY_PREFIX}{public}",
                key_hash=hash_key(raw),
                workers=workers,
                tools=tools,
                read_only=read_only,
                expires_at=expires_at,
            )
    except IntegrityError:
        raise ApiKeyError(f"An API key named {name!r} exists already: pick another name or revoke it.") from None
    return key, raw


def revoke_key(name: str) -> ApiKey:
    key = ApiKey.objects.filter(name=name).first()
    if key is None:
        raise ApiKeyError(f"No API key named {name!r}: see `python manage.py workers mcp keys list`.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def authenticate(raw: str | None) -> ApiKey:
    """The usable key whose text is `raw`; InvalidApiKey otherwise (missing, unknown, revoked, expired)."""
    if not raw:
        raise InvalidApiKey("An API key is required: send `Authorization: Bearer <key>`.")
    key = ApiKey.objects.filter(key_hash=hash_key(raw)).first()
    if key is None:
        raise InvalidApiKey("Unknown API key.")
    return _usable(key)


def named_key(name: str) -> ApiKey:
    """The usable key called `name` (stdio runs as a named key: the process's user already has the database)."""
    key = ApiKey.objects.filter(name=name).first()
    if key is None:
        raise InvalidApiKey(f"No API key named {name!r}: create it with `python manage.py workers mcp keys create`.")
    return _usable(key)


def refresh(key_id: int) -> ApiKey:
    """The key again, for a long-lived stdio session: a revocation takes effect on the next message."""
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None:
        raise InvalidApiKey("The API key was deleted.")
    return _usable(key)


def _usable(key: ApiKey) -> ApiKey:
    if key.revoked_at is not None:
        raise InvalidApiKey(f"The API key {key.name!r} was revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise InvalidApiKey(f"The API key {key.name!r} expired.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def describe(key: ApiKey) -> dict[str, Any]:
    """What `keys list` and the admin show: never the key, only its prefix."""
    if key.revoked_at is not None:
        state = "revoked"
    elif key.expires_at is not None and key.expires_at <= timezone.now():
        state = "expired"
    else:
        state = "active"
    return {
        "name": key.name,
        "prefix": key.prefix,
        "state": state,
        "scope": scope_text(key),
        "last_used_at": key.last_used_at,
        "expires_at": key.expires_at,
    }


def scope_text(key: ApiKey) -> str:
    parts = []
    if key.workers:
        parts.append("workers " + ", ".join(key.workers))
    if key.tools:
        parts.append("tools " + ", ".join(key.tools))
    if not parts:
        parts.append("every worker")
    if key.read_only:
        parts.append("read-only")
    return "; ".join(parts)
