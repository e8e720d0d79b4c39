"""`POST /webhooks/<worker>/<webhook>/`: answered at once; the handler runs later on a Celery worker."""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import BodyReader, receive


def _read_to_end(stream: Any) -> BodyReader:
    """A reader of a stream the server ends at the body's end (`wsgi.input_terminated`), with a cap."""

    def read(limit: int) -> bytes:
        chunks, size = [], 0
        while size < limit:
            try:
                chunk = stream.read(min(64 * 1024, limit - size))
            except OSError:
                raise
            except Exception as exc:  # the server's own parse errors (gunicorn: InvalidChunkSize, ...)
                raise UnreadablePostError(f"malformed body: {type(exc).__name__}") from exc
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    return read


def body_source(request: HttpRequest) -> tuple[int | None, BodyReader | None]:
    """The body's declared length (None: not declared) and how to read it (None: this server cannot).

    Django reads `Content-Length` bytes and nothing else, so a chunked body would look empty. A
    server that decodes chunked bodies and ends the input stream there says so with
    `wsgi.input_terminated` (gunicorn's WSGI workers do), or an ASGI server: that stream is read up
    to the limit. runserver and the test server do not: such a request is answered 411 rather than handled with an empty body.
    """
    declared = (request.META.get("CONTENT_LENGTH") or "").strip()
    if declared:
        length = int(declared)
        if length < 0:
            raise ValueError(declared)
        # Read from the stream with a cap, not request.body: an oversized body is never held whole.
        return length, request.read
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if request.META.get("wsgi.input_terminated"):
            return None, _read_to_end(request.META["wsgi.input"])
        if isinstance(request, ASGIRequest):
            # Under ASGI Django has received the body to its end before the view runs (the site's
            # ASGI application caps how much: connections/mcp/asgi.py).
            return None, _read_to_end(request)
        return None, None
    return 0, request.read


@csrf_exempt  # senders are other services; the signature check stands in for CSRF protection
@never_cache
@require_POST
def webhook(request: HttpRequest, worker: str, webhook: str) -> JsonResponse:
    try:
        length, read_body = body_source(request)
    except ValueError:
        return JsonResponse({"status": "rejected", "reason": "invalid Content-Length"}, status=400)
    answer = receive(
        worker,
        webhook,
        method=request.method or "POST",
        path=request.path,
        headers=dict(request.headers),
        content_length=length,
        read_body=read_body,
        query=request.GET.dict(),
    )
    if answer.duplicate and answer.event is not None:
        # A replay of a signed request already handled: no second run. 200, not 202: nothing was queued.
        run = answer.run.pk if answer.run is not None else None
        return JsonResponse({"status": "duplicate", "event": answer.event.pk, "run": run}, status=200)
    if answer.status == 202 and answer.event is not None and answer.run is not None:
        return JsonResponse({"status": "accepted", "event": answer.event.pk, "run": answer.run.pk}, status=202)
    return JsonResponse({"status": "rejected", "reason": answer.reason}, status=answer.status)
