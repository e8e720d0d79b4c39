"""A small OAuth provider on 127.0.0.1 that behaves like GitHub, Google or Salesforce, or answers badly on purpose.

The sandbox provider (django-oauth-toolkit) is the real authorization server of the suite; this one
exists for the quirks and failures a real provider shows and the sandbox does not, hostile ones
included (`hostile(...)`: a dripped body, a huge one, absurd expires_in, a token that is an object,
a MAC token, a Retry-After of three years or as an HTTP date). `/api` is a resource server whose
answers tests script the same way (`api_script`).
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from django.conf import settings
from django.test.utils import override_settings

from connections import registry
from connections.deploy import deploy
from connections.models import Secret
from connections.sdk import Worker

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-7f3a9c"


@dataclass
class Reply:
    """A scripted answer of the token endpoint."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Seconds between two bytes of the body (each byte sent on its own).
    drip: float = 0.0
    # Drip the status line and headers too, byte by byte.
    drip_headers: bool = False
    # Send no Content-Length: the body ends when the connection closes (HTTP/1.0).
    no_length: bool = False


@dataclass
class FakeProvider:
    """Style: "plain" (RFC 6749), "github", "google" or "salesforce"."""

    style: str = "plain"
    expires_in: int | None = 3600
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    revocations: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    script: list[Reply] = field(default_factory=list)
    issued: list[dict[str, str]] = field(default_factory=list)
    revoked_refresh_tokens: set[str] = field(default_factory=set)
    url: str = ""
    # Seconds each token answer takes: a real provider's latency, which lets concurrent callers overlap.
    token_delay: float = 0.0
    # While set, each token request waits for this gate (at most 60 s) before it is answered, and
    # `token_held` says one has arrived: a test sees what other callers do while a refresh is out.
    token_gate: threading.Event | None = None
    token_held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The resource server at /api: scripted answers, else 200 {"ok": true}; what it was sent.
    api_script: list[Reply] = field(default_factory=list)
    api_requests: list[dict[str, str]] = field(default_factory=list)
    # While set, the token endpoint gives every request this answer (an outage: e.g. a 503).
    down: Reply | None = None

    # --- behaviour of each style ------------------------------------------------------------

    def _new_tokens(self, grant: str) -> dict[str, Any]:
        token: dict[str, Any] = {"access_token": "at-" + secrets.token_hex(16), "token_type": "bearer"}
        if self.style == "github":
            token["scope"] = "repo,user"
        else:
            token["scope"] = "read"
        if self.style == "google" and grant == "refresh_token":
            pass  # Google's refresh answers carry no new refresh token
        else:
            token["refresh_token"] = "rt-" + secrets.token_hex(16)
        if self.style == "salesforce":
            token["instance_url"] = "https://example.my.salesforce.test"
            token["id"] = "https://login.salesforce.test/id/00D/005"
        elif self.expires_in is not None:
            token["expires_in"] = self.expires_in
        self.issued.append(token)
        return token

    def token(self, form: dict[str, str], headers: dict[str, str]) -> Reply:
        if self.token_delay:
            time.sleep(self.token_delay)
        if self.token_gate is not None:
            self.token_held.set()
            self.token_gate.wait(60)
        with self.lock:
            self.token_requests.append({**form, "_accept": headers.get("accept", "")})
            if self.down is not None:
                return self.down
            if self.script:
                return self.script.pop(0)
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return self._error("invalid_client", "Client authentication failed", 401)
            grant = form.get("grant_type")
            if grant == "refresh_token" and form.get("refresh_token") in self.revoked_refresh_tokens:
                # GitHub's own code for a dead refresh token; everyone else says invalid_grant.
                code = "bad_refresh_token" if self.style == "github" else "invalid_grant"
                return self._error(code, "The refresh token is invalid or revoked", 400)
            if grant == "refresh_token" and self.style != "google":
                self.revoked_refresh_tokens.add(form.get("refresh_token", ""))  # rotated on use
            token = self._new_tokens(grant or "")
        if self.style == "github" and "application/json" not in headers.get("accept", ""):
            return Reply(body=urlencode(token), content_type="application/x-www-form-urlencoded")
        return Reply(body=json.dumps(token))

    def _error(self, error: str, description: str, status: int) -> Reply:
        payload = {"error": error, "error_description": description}
        if self.style == "github":  # GitHub: HTTP 200 with an error field
            return Reply(status=200, body=json.dumps(payload))
        return Reply(status=status, body=json.dumps(payload))

    @property
    def refresh_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.token_requests if r.get("grant_type") == "refresh_token"]


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body.encode()
            if reply.drip_headers:
                self._drip_all(reply, body)
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            if not reply.no_length:
                self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                if reply.drip:
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _drip_all(self, reply: Reply, body: bytes) -> None:
            head = f"HTTP/1.0 {reply.status} OK\r\nContent-Type: {reply.content_type}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
            head += f"Content-Length: {len(body)}\r\n\r\n"
            data = head.encode() + body
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            if parsed.path == "/authorize":
                query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                provider.authorizations.append(query)
                target = (
                    query["redirect_uri"]
                    + "?"
                    + urlencode({"code": "code-" + secrets.token_hex(8), "state": query.get("state", "")})
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
                return
            if parsed.path == "/api":
                with provider.lock:
                    provider.api_requests.append({k.lower(): v for k, v in self.headers.items()})
                    reply = provider.api_script.pop(0) if provider.api_script else Reply(body='{"ok": true}')
                self._send(reply)
                return
            self._send(Reply(status=404, body="{}"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urlparse(self.path).path
            if path == "/token":
                self._send(provider.token(form, headers))
            elif path == "/revoke":
                provider.revocations.append(form)
                provider.revoked_refresh_tokens.add(form.get("token", ""))
                self._send(Reply(status=200, body=""))
            else:
                self._send(Reply(status=404, body="{}"))

    return Handler


def hostile(kind: str) -> Reply:
    """A token endpoint's answer that is broken or malicious on purpose."""
    token = "at-" + secrets.token_hex(16)
    good = {"access_token": token, "token_type": "bearer", "refresh_token": "rt-" + secrets.token_hex(16)}
    if kind == "drip":  # a valid answer, one byte every 0.2 s: about 20 s in all
        return Reply(body=json.dumps(good), drip=0.2)
    if kind == "drip-headers":  # the same from the status line on: over 30 s
        return Reply(body=json.dumps(good), drip=0.2, drip_headers=True)
    if kind in ("huge", "huge-unannounced"):  # 10 MB, with or without a Content-Length
        return Reply(body=json.dumps({**good, "padding": "x" * 10_000_000}), no_length=kind == "huge-unannounced")
    if kind in ("1e30", "-100", "NaN", "Infinity", '"soon"'):  # JSON numbers Python reads, and a string
        return Reply(body=json.dumps(good)[:-1] + f', "expires_in": {kind}}}')
    if kind == "newline-token":  # would smuggle a header into every API call
        return Reply(body=json.dumps({**good, "access_token": token + "\r\nX-Injected: 1"}))
    if kind == "object-token":
        return Reply(body=json.dumps({**good, "access_token": {"value": token}}))
    if kind == "long-scope":  # more than the 2,000 characters a granted scope is stored in
        return Reply(body=json.dumps({**good, "scope": "read " * 500}))
    if kind == "nul-scope":  # PostgreSQL stores NUL in no text column
        return Reply(body=json.dumps({**good, "scope": "read\u0000write"}))
    if kind == "mac":
        return Reply(body=json.dumps({**good, "token_type": "mac", "mac_key": "k", "mac_algorithm": "hmac-sha-256"}))
    if kind == "retry-after-huge":
        return Reply(status=429, body="{}", headers={"Retry-After": "99999999"})
    if kind == "retry-after-date":
        when = datetime.now(UTC) + timedelta(seconds=120)
        return Reply(status=429, body="{}", headers={"Retry-After": format_datetime(when, usegmt=True)})
    if kind == "escape":  # terminal escape sequences in the provider's words
        return Reply(
            status=400,
            body=json.dumps({"error": "invalid_request", "error_description": "\x1b[2J\x1b[31mYOU ARE HACKED\x07"}),
        )
    raise ValueError(kind)


@contextmanager
def running(provider: FakeProvider) -> Iterator[FakeProvider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def deploy_fake_worker(
    provider: FakeProvider, slug: str = "fake", key: str = "fakeAuth", **oauth: Any
) -> Callable[[], None]:
    """Deploy a worker whose capability uses `provider`, next to the example workers; store its secrets."""
    worker = Worker(slug)
    options: dict[str, Any] = {
        "name": f"{slug}-oauth",
        "authorization_endpoint": f"{provider.url}/authorize",
        "token_endpoint": f"{provider.url}/token",
        "revocation_endpoint": f"{provider.url}/revoke",
        "scope": "read",
        "client_id": worker.env("FAKE_CLIENT_ID"),
        "client_secret": worker.env("FAKE_CLIENT_SECRET"),
    }
    options.update(oauth)
    worker.oauth(key, **options)
    module = types.ModuleType(f"tests_fake_worker_{slug}")
    module.worker = worker  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    override = override_settings(WORKER_MODULES=[*settings.WORKER_MODULES, module.__name__])
    override.enable()
    registry.clear_cache()
    deploy()
    from connections.models import Worker as WorkerRow

    row = WorkerRow.objects.get(slug=slug)
    Secret.objects.update_or_create(worker=row, name="FAKE_CLIENT_ID", defaults={"value": CLIENT_ID})
    Secret.objects.update_or_create(worker=row, name="FAKE_CLIENT_SECRET", defaults={"value": CLIENT_SECRET})

    def undo() -> None:
        override.disable()
        registry.clear_cache()
        sys.modules.pop(module.__name__, None)

    return undo
