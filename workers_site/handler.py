"""Django under the ASGI server, with its middleware and views run as a WSGI server runs them.

Django's own ASGI handler runs the middleware chain in async mode: each synchronous hook of each
middleware (Django's own, WhiteNoise's, django-csp's) is a hop between the event loop and the
request's thread, a dozen per request. Through gunicorn on this project's 2-core build machine
that was most of a request's cost: `/healthz` took 4-5 ms of the web process's CPU, against about
2 ms with the chain run synchronously. This handler keeps everything else of Django's (reading the
body, chunked included, in the event loop; streaming the response; the disconnect watch; closing
the response, which returns the database connection) and runs the synchronous chain and the view
in the request's own thread (asgiref's ThreadSensitiveContext, one per request, as before) in one
hop. The site's views are all synchronous; an async view would run through async_to_sync here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        # Not ASGIHandler.__init__, which loads the chain for async mode.
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gone: list[OSError] = []

        async def send_or_cancel(message: dict[str, Any]) -> None:
            try:
                await send(message)
            except OSError as exc:
                # The client went away mid-response, told as an OSError (gunicorn's HTTP/2 stream)
                # where Django expects a cancellation: raised through, it skipped closing the
                # response, which ends the request (request_finished) and gives the request's
                # database connection back to the web server's pool, leaving it taken for good.
                gone.append(exc)
                raise asyncio.CancelledError from exc

        try:
            await super().handle(scope, receive, send_or_cancel)
        except asyncio.CancelledError:
            # Where Django lets it out (an error response it could not send), the server gets the
            # OSError it raised, not a cancellation of a task nobody cancelled.
            task = asyncio.current_task()
            if gone and (task is None or task.cancelling() == 0):
                raise gone[0] from None
            raise
