"""The sandbox provider's protected API."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_datetime
from oauth2_provider.decorators import protected_resource

from .models import SandboxItem


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
