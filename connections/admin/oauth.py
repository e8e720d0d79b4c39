"""OAuth capabilities: configuration (read-only: the code is the source of truth), health, and
Connect / Reconnect / Disconnect. No page ever shows a token."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..exceptions import AuthorizationError
from ..models import AuthorizationAttempt, Connection, Health, OAuthCapability
from ..oauth.flow import start_authorization
from ..oauth.tokens import disconnect
from ..overview import BADGE_COLOURS
from ..secrets import missing_secrets
from ..text import describe_time, printable
from .runner import ScalableAdmin

CONFIG_FIELDS = [
    "worker",
    "key",
    "name",
    "provider",
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "scope",
    "client_id_display",
    "client_secret_ref",
    "authorization_params",
    "access_token_expire_ms",
    "use_pkce",
    "is_active",
]
HEALTH_FIELDS = ["status_badge", "expires", "last_refresh", "granted_scope", "last_error", "failures", "connected"]
CONNECT_PERMISSION = "connections.connect_oauthcapability"


class HealthFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(Health.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        return queryset.in_health(value) if value in Health.values else None


@admin.register(OAuthCapability)
class OAuthCapabilityAdmin(ScalableAdmin):
    list_display = ["key", "worker", "name", "status_badge", "expires", "last_refresh", "is_active"]
    ordering = ["worker_id", "key"]  # the (worker, key) unique index; see CodeDefinedAdmin
    list_filter = [HealthFilter, "is_active", "worker"]
    search_fields = ["key", "name", "worker__slug"]
    list_select_related = ["worker", "connection"]
    fieldsets = [
        (_("Connection"), {"fields": HEALTH_FIELDS}),
        (_("Configuration (from the worker's code; change it there and deploy)"), {"fields": CONFIG_FIELDS}),
    ]
    readonly_fields = CONFIG_FIELDS + HEALTH_FIELDS
    change_form_template = "admin/connections/oauthcapability/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # nothing here is editable; the page is a view plus the connect actions

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/connect/", wrap(self.connect_view), name="connections_oauthcapability_connect"),
            path(
                "<path:object_id>/disconnect/",
                wrap(self.disconnect_view),
                name="connections_oauthcapability_disconnect",
            ),
            *super().get_urls(),
        ]

    # --- health columns -------------------------------------------------------------------

    @staticmethod
    def _conn(obj: OAuthCapability) -> Connection | None:
        try:
            return obj.connection
        except Connection.DoesNotExist:
            return None

    @admin.display(description=_("status"))
    def status_badge(self, obj: OAuthCapability) -> str:
        state = Health(Connection.health_of(self._conn(obj)))
        return format_html(
            '<span style="color:#fff;background:{};padding:2px 8px;border-radius:10px;white-space:nowrap">{}</span>',
            BADGE_COLOURS[state],
            state.label,
        )

    @admin.display(description=_("expires"))
    def expires(self, obj: OAuthCapability) -> Any:
        conn = self._conn(obj)
        if conn is None or conn.status == Connection.Status.NOT_CONNECTED:
            return "-"
        if conn.expires_at is None:
            return _("unknown (the provider gave no lifetime)")
        return describe_time(conn.expires_at)

    @admin.display(description=_("last refresh"))
    def last_refresh(self, obj: OAuthCapability) -> Any:
        conn = self._conn(obj)
        return describe_time(conn.last_refreshed_at if conn else None)

    @admin.display(description=_("granted scopes"))
    def granted_scope(self, obj: OAuthCapability) -> str:
        conn = self._conn(obj)
        return (conn.granted_scope if conn else "") or "-"

    @admin.display(description=_("last error"))
    def last_error(self, obj: OAuthCapability) -> str:
        conn = self._conn(obj)
        if conn is None or not conn.last_error:
            return "-"
        error = printable(conn.last_error)  # rows stored before provider text was escaped on the way in
        return f"{error} ({conn.last_error_at:%Y-%m-%d %H:%M:%S %Z})" if conn.last_error_at else error

    @admin.display(description=_("failed refreshes in a row"))
    def failures(self, obj: OAuthCapability) -> int:
        conn = self._conn(obj)
        return conn.failure_count if conn else 0

    @admin.display(description=_("connected"))
    def connected(self, obj: OAuthCapability) -> Any:
        conn = self._conn(obj)
        return describe_time(conn.connected_at if conn else None)

    @admin.display(description=_("client id"))
    def client_id_display(self, obj: OAuthCapability) -> str:
        """The secret's name for `worker.env("NAME")` (its value stays on the Secrets page); a literal as is."""
        ref = obj.client_id or {}
        if ref.get("secret"):
            return f"{ref['secret']} (a secret of worker {obj.worker.slug}, set under Secrets)"
        return str(ref.get("value") or "-")

    # --- views ----------------------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        capability = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if capability is not None:
            conn = self._conn(capability)
            context["can_connect"] = request.user.has_perm(CONNECT_PERMISSION) and capability.is_active
            context["is_connected"] = conn is not None and conn.status != Connection.Status.NOT_CONNECTED
            context["redirect_url"] = app_settings.REDIRECT_URL
            if request.method == "GET":
                wanted = set(capability.secret_names())
                missing = [name for name in missing_secrets(capability.worker) if name in wanted]
                if missing:
                    messages.warning(
                        request,
                        f"Secret(s) not set for worker {capability.worker.slug}: "
                        f"{', '.join(missing)}. Add them under Secrets before connecting.",
                    )
        return super().change_view(request, object_id, form_url, context)

    def _action_target(self, request: HttpRequest, object_id: str) -> OAuthCapability:
        if not request.user.has_perm(CONNECT_PERMISSION):
            raise PermissionDenied
        return get_object_or_404(OAuthCapability.objects.select_related("worker"), pk=object_id)

    def _back(self, capability: OAuthCapability) -> HttpResponseRedirect:
        return redirect(reverse("admin:connections_oauthcapability_change", args=[capability.pk]))

    def connect_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST only (CSRF-checked): start the flow and send the browser to the provider."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        capability = self._action_target(request, object_id)
        try:
            started = start_authorization(
                capability, origin=AuthorizationAttempt.Origin.ADMIN, user=request.user, session=request.session
            )
        except AuthorizationError as exc:
            messages.error(request, str(exc))
            return self._back(capability)
        return HttpResponseRedirect(started.url)

    def disconnect_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        capability = self._action_target(request, object_id)
        conn, _ = Connection.objects.get_or_create(capability=capability)
        problems = disconnect(conn.pk)
        self.log_change(request, capability, "Disconnected")
        for problem in problems:
            messages.warning(request, problem)
        messages.success(request, f"Disconnected {capability.key}; its tokens were forgotten.")
        return self._back(capability)
