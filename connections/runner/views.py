"""`POST /webhooks/<worker>/<webhook>/`: answered at once; the handler runs later on a Celery worker."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import receive


@csrf_exempt  # senders are other services; the signature check stands in for CSRF protection
@never_cache
@require_POST
def webhook(request: HttpRequest, worker: str, webhook: str) -> JsonResponse:
    try:
        length: int | None = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = None
    answer = receive(
        worker,
        webhook,
        method=request.method or "POST",
        path=request.path,
        headers=dict(request.headers),
        content_length=length,
        # Read from the stream with a cap, not request.body: an oversized body is never held whole.
        read_body=request.read,
        query=request.GET.dict(),
    )
    if answer.status == 202 and answer.event is not None and answer.run is not None:
        return JsonResponse({"status": "accepted", "event": answer.event.pk, "run": answer.run.pk}, status=202)
    return JsonResponse({"status": "rejected", "reason": answer.reason}, status=answer.status)
