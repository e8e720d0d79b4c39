"""OAuth capabilities: configuration (read-only, the code is the source of truth) and connection health."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from ..models import OAuthCapability
from ..secrets import missing_secrets

CONFIG_FIELDS = [
    "worker",
    "key",
    "name",
    "provider",
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "scope",
    "client_id",
    "client_secret_ref",
    "authorization_params",
    "access_token_expire_ms",
    "use_pkce",
    "is_active",
]


@admin.register(OAuthCapability)
class OAuthCapabilityAdmin(admin.ModelAdmin):
    list_display = ["key", "worker", "name", "provider", "is_active"]
    list_filter = ["is_active", "worker"]
    search_fields = ["key", "name", "worker__slug"]
    list_select_related = ["worker"]
    fields = CONFIG_FIELDS
    readonly_fields = CONFIG_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        capability = self.get_object(request, object_id)
        if capability is not None and request.method == "GET":
            wanted = set(capability.secret_names())
            missing = [name for name in missing_secrets(capability.worker) if name in wanted]
            if missing:
                messages.warning(
                    request,
                    f"Secret(s) not set for worker {capability.worker.slug}: "
                    f"{', '.join(missing)}. Add them under Secrets before connecting.",
                )
        return super().change_view(request, object_id, form_url, extra_context)
