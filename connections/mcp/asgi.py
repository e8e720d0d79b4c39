"""One ASGI application: `/mcp/` to the SDK's Streamable HTTP transport behind the bearer check, the rest to Django."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from asgiref.typing import ASGIApplication
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from ..conf import app_settings
from ..dbpool import close_database_connections
from ..exceptions import InvalidApiKey
from . import keys
from .calls import in_thread
from .server import SCOPE_KEY, build_server

logger = logging.getLogger("connections.mcp")

Scope = dict[str, Any]
PATH = "/mcp"


def is_mcp_path(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
    return None


async def _unauthorized(send: Any, reason: str) -> None:
    body = json.dumps({"error": "invalid_token", "error_description": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # RFC 6750: the scheme and why; the reason never holds the key sent.
                (b"www-authenticate", b'Bearer realm="workers-mcp", error="invalid_token"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BearerKeys:
    """Every MCP request carries a usable API key, or is answered 401 with `WWW-Authenticate` before the SDK sees it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            key = await in_thread(keys.authenticate, _bearer(scope))
        except InvalidApiKey as exc:
            await _unauthorized(send, str(exc))
            return
        scope = dict(scope)
        scope[SCOPE_KEY] = key.pk
        # The SDK binds each session to the principal that opened it: another key cannot use its id.
        scope["user"] = AuthenticatedUser(AccessToken(token=key.prefix, client_id=f"api-key-{key.pk}", scopes=[]))
        await self.app(scope, receive, send)


def _django_body_cap() -> int | None:
    """Body bytes passed on to Django: one more than any of its views accepts (they answer 413 or 400
    themselves); Django's ASGI handler spools a whole body before the view runs, so without a cap an
    endless chunked upload would fill the disk."""
    from django.conf import settings

    data = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if data is None:
        return None
    return max(app_settings.WEBHOOK_MAX_BODY, data) + 1


def _capped(receive: Any, cap: int | None) -> Any:
    if cap is None:
        return receive
    seen = 0
    ended = False

    async def capped() -> dict[str, Any]:
        nonlocal seen, ended
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # http.disconnect: Django listens for it after the body
            if ended:
                continue  # the rest of an upload past the cap: read and dropped, never held
            body = message.get("body", b"")
            if seen + len(body) >= cap:
                message = {**message, "body": body[: cap - seen], "more_body": False}
            ended = not message.get("more_body", False)
            seen += len(message.get("body", b""))
            return message

    return capped


class Site:
    """The site as one ASGI application; `lifespan` runs the MCP session manager for the process's life."""

    def __init__(self, django_app: ASGIApplication) -> None:
        self.django_app = django_app
        self.manager = StreamableHTTPSessionManager(
            app=build_server(),
            # Stateless: any web process answers any request, so several gunicorn workers need no sticky routing.
            stateless=True,
            max_request_body_size=app_settings.MCP_MAX_BODY,
        )
        self.mcp_app = BearerKeys(self.manager.handle_request)
        self._django_slots: anyio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and is_mcp_path(scope.get("path", "")):
            await self.mcp_app(scope, receive, send)
        else:
            if self._django_slots is None:
                self._django_slots = anyio.Semaphore(app_settings.WEB_THREADS)
            # Django runs each request's code in a thread with its own database connection: as many
            # at once as gthread had threads, the rest wait here instead of opening more connections.
            async with self._django_slots:
                await self.django_app(scope, _capped(receive, _django_body_cap()), send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        try:
            async with self.manager.run():
                await send({"type": "lifespan.startup.complete"})
                while (await receive())["type"] != "lifespan.shutdown":
                    pass
        except Exception as exc:  # reported to the server, which then refuses to start
            logger.exception("The MCP session manager failed")
            await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
            return
        # The pool's connections are closed, not dropped with the process (the server logs those).
        await anyio.to_thread.run_sync(close_database_connections)
        await send({"type": "lifespan.shutdown.complete"})
