"""The sandbox provider's protected API."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_datetime
from oauth2_provider.oauth2_backends import get_oauthlib_core

from .models import SandboxItem


def protected_resource(scopes: list[str]) -> Any:
    """Like django-oauth-toolkit's decorator, but answers 401 with WWW-Authenticate as real APIs do.

    (DOT's own answers 403 to an expired token, which would hide the case a 401 retry exists for.)
    """

    def decorator(view: Any) -> Any:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=scopes)
            if not valid:
                response = JsonResponse({"error": "invalid_token"}, status=401)
                response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
                return response
            request.resource_owner = oauth_request.user
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@protected_resource(scopes=["read"])
def me(request: HttpRequest) -> JsonResponse:
    user = request.resource_owner
    return JsonResponse({"id": user.pk, "username": user.get_username(), "email": user.email})


@protected_resource(scopes=["read"])
def items(request: HttpRequest) -> JsonResponse:
    """Pages of items by ascending id: `?after=<id>&limit=<n>&since=<iso time>`.

    With `since`, only items changed after it are listed, deleted ones included (as `deleted`).
    """
    try:
        after = int(request.GET.get("after", 0))
        limit = max(1, min(int(request.GET.get("limit", 10)), 100))
    except ValueError:
        return JsonResponse({"error": "after and limit must be integers"}, status=400)
    rows = SandboxItem.objects.filter(id__gt=after)
    since = parse_datetime(request.GET.get("since", "") or "")
    if since is not None:
        rows = rows.filter(updated_at__gt=since)
    else:
        rows = rows.filter(deleted=False)
    page = list(rows.order_by("id")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    return JsonResponse(
        {
            "items": [
                {
                    "id": item.id,
                    "title": item.title,
                    "status": item.status,
                    "deleted": item.deleted,
                    "updated_at": item.updated_at.isoformat(),
                }
                for item in page
            ],
            "has_more": has_more,
            "next_after": page[-1].id if page else after,
        }
    )


@protected_resource(scopes=["read"])
def flaky(request: HttpRequest) -> JsonResponse:
    """Rate-limited the first time per `?key=`: 429 with `Retry-After: 1`, then the answer."""
    from django.db import transaction
    from django.db.models import F

    from .models import FlakyHit

    key = request.GET.get("key", "")
    with transaction.atomic():
        hit, _ = FlakyHit.objects.get_or_create(key=key)
        FlakyHit.objects.filter(pk=hit.pk).update(hits=F("hits") + 1)
    if hit.hits == 0:
        response = JsonResponse({"error": "rate_limited"}, status=429)
        response["Retry-After"] = "1"
        return response
    return JsonResponse({"key": key, "calls": hit.hits + 1, "user": request.resource_owner.get_username()})
