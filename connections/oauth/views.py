"""`/oauth/callback/`: the single redirect URL of every capability."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET

from ..exceptions import AuthorizationError
from ..models import AuthorizationAttempt, OAuthCapability
from .flow import complete_authorization

CONNECT_PERMISSION = "connections.connect_oauthcapability"


def try_again(request: HttpRequest, capability: OAuthCapability | None) -> dict[str, str]:
    """Where the failed page's "Try again" leads: Connect again at once (a POST with CSRF) for
    someone allowed to, else the capability's page, else the list of capabilities."""
    if capability is None:
        return {"back_url": reverse("admin:connections_oauthcapability_changelist")}
    back = {"back_url": reverse("admin:connections_oauthcapability_change", args=[capability.pk])}
    user = request.user
    if capability.is_active and user.is_active and user.is_staff and user.has_perm(CONNECT_PERMISSION):
        return {**back, "retry_url": reverse("admin:connections_oauthcapability_connect", args=[capability.pk])}
    return back


@never_cache
@require_GET
@sensitive_variables("params")
def callback(request: HttpRequest) -> HttpResponse:
    """Complete the flow; on any failure show a clear page and store nothing."""
    params = {key: request.GET.get(key, "") for key in ("state", "code", "error", "error_description")}
    try:
        attempt = complete_authorization(params, session=request.session, user=request.user)
    except AuthorizationError as exc:
        status = 500 if exc.code == "internal_error" else 400
        return render(
            request,
            "connections/oauth_result.html",
            {"ok": False, "message": str(exc), "code": exc.code, **try_again(request, exc.capability)},
            status=status,
        )
    capability = attempt.capability
    message = f"Connected {capability.key} ({capability.worker.slug})."
    if attempt.origin == AuthorizationAttempt.Origin.ADMIN and request.user.is_staff:
        LogEntry.objects.log_actions(
            request.user.pk, [capability], CHANGE, change_message="Connected", single_object=True
        )
        messages.success(request, message)
        return redirect(reverse("admin:connections_oauthcapability_change", args=[capability.pk]))
    return render(
        request,
        "connections/oauth_result.html",
        {"ok": True, "message": message + " You can close this window; the command line has noticed."},
    )
