"""The site's ASGI handler: Django's, with the middleware chain run synchronously in one hop."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished

from workers_site.handler import OneHopASGIHandler


def _scope(path: str, method: str = "GET") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def _get(handler: OneHopASGIHandler, path: str, body: bytes = b"", method: str = "GET") -> tuple[int, dict, bytes]:
    scope = _scope(path, method)

    async def exchange() -> tuple[int, dict, bytes]:
        communicator = ApplicationCommunicator(handler, scope)
        # The body in two messages, as a chunked request arrives.
        await communicator.send_input({"type": "http.request", "body": body[:3], "more_body": True})
        await communicator.send_input({"type": "http.request", "body": body[3:], "more_body": False})
        start = await communicator.receive_output(10)
        content = b""
        while True:
            message = await communicator.receive_output(10)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(10)  # the handler's end too (closing the response)
        return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content

    return asyncio.run(exchange())


def test_the_middleware_runs_synchronously_and_answers_as_django_would(transactional_db, monkeypatch):
    handler = OneHopASGIHandler()
    hops: list[str] = []
    counted = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await counted(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)

    status, headers, content = _get(handler, "/healthz")

    # One hop to the request's thread for the whole chain and the view, beside the request_started
    # signal's and closing the response's. Django's own handler adapts each middleware hook to async mode, a hop each (16 for
    # this request), which made a request cost the web process 4-5 ms of CPU instead of about 2.
    assert [hop for hop in hops if "Signal" not in hop] == ["BaseHandler.get_response", "HttpResponseBase.close"]
    assert status == 200 and json.loads(content) == {"status": "ok", "database": "up"}
    # Headers only the middleware sets: security, CSP, no caching from the view's decorator.
    assert headers["x-frame-options"] == "DENY" and "content-security-policy" in headers
    assert "no-cache" in headers["cache-control"]


def test_errors_and_bodies_go_through_the_same_handling(transactional_db):
    handler = OneHopASGIHandler()

    missing_status, _, missing = _get(handler, "/no-such-page/")
    hook_status, _, hook = _get(handler, "/webhooks/nobody/nothing/", body=b'{"a": 1}', method="POST")

    assert missing_status == 404 and b"Traceback" not in missing
    assert hook_status == 404 and json.loads(hook)["reason"] == "unknown webhook"


def test_the_site_serves_django_through_it(transactional_db):
    from workers_site import asgi

    assert isinstance(asgi.application.django_app, OneHopASGIHandler)


def test_a_client_gone_mid_response_still_ends_the_request(transactional_db):
    # An OSError from the server's send (the client went away) still closes the response: the
    # request ends and its database connection goes back to the pool, as on a cancellation.
    handler = OneHopASGIHandler()
    finished: list[object] = []

    def on_finished(**kwargs: object) -> None:
        finished.append(kwargs)

    async def exchange() -> None:
        incoming = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict:
            if incoming:
                return incoming.pop()
            await asyncio.sleep(3600)  # no disconnect message: the send fails first
            return {}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                raise OSError("Connection reset by peer")

        await handler(_scope("/healthz"), receive, send)

    request_finished.connect(on_finished)
    try:
        asyncio.run(exchange())
    finally:
        request_finished.disconnect(on_finished)

    assert len(finished) == 1


def test_a_client_gone_before_an_error_response_is_an_oserror_for_the_server(transactional_db):
    # Django sends the response to a request it cannot build (here a query string that is not
    # UTF-8: 400) outside its own cancellation handling: the server gets the OSError it raised,
    # not a cancellation of a task nobody cancelled.
    handler = OneHopASGIHandler()
    scope = {**_scope("/healthz"), "query_string": b"q=\xff"}

    async def exchange() -> None:
        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            raise OSError("Connection reset by peer")

        await handler(scope, receive, send)

    with pytest.raises(OSError, match="Connection reset"):
        asyncio.run(exchange())
