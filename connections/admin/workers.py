"""Workers and their secrets. Secret values are write-only: no page ever renders one."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import OAuthCapability, Secret, Sync, Tool, Webhook, Worker
from ..secrets import missing_among, missing_secrets
from .runner import ScalableAdmin


class SecretForm(forms.ModelForm):
    value = forms.CharField(
        label=_("value"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only: the stored value is never shown. Leave blank to keep it."),
    )

    class Meta:
        model = Secret
        fields = ["worker", "name", "value"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The form must never carry the stored value, not even as an initial value.
        self.initial.pop("value", None)
        if self.instance.pk is None:
            self.fields["value"].required = True
            self.fields["value"].help_text = _("Write-only: it cannot be displayed after saving.")

    def clean_value(self) -> str:
        value = self.cleaned_data.get("value") or ""
        if not value and self.instance.pk is not None:
            return self.instance.value
        return value

    @property
    def changed_data(self) -> list[str]:
        # A blank field on change keeps the value, which is not a change worth logging.
        changed = [name for name in super().changed_data if name != "value"]
        if self.data.get(self.add_prefix("value")):
            changed.append("value")
        return changed


@admin.register(Secret)
class SecretAdmin(ScalableAdmin):
    form = SecretForm
    list_display = ["name", "worker", "updated_at"]
    list_filter = ["worker"]
    search_fields = ["name", "worker__slug"]
    list_select_related = ["worker"]
    ordering = ["worker_id", "name"]  # the (worker, name) unique index; see CodeDefinedAdmin
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Secret | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["worker", "name"] if obj is not None else fields


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CapabilityInline(ReadOnlyInline):
    model = OAuthCapability
    fields = ["key", "name", "provider", "is_active"]


class ToolInline(ReadOnlyInline):
    model = Tool
    fields = ["key", "title", "is_active"]


class SyncInline(ReadOnlyInline):
    model = Sync
    fields = ["key", "database", "schedule", "mode", "is_active"]


class WebhookInline(ReadOnlyInline):
    model = Webhook
    fields = ["key", "is_active"]


class SecretNameInline(ReadOnlyInline):
    model = Secret
    fields = ["name", "updated_at"]
    readonly_fields = ["name", "updated_at"]
    verbose_name_plural = _("secrets (names only)")


@admin.register(Worker)
class WorkerAdmin(ScalableAdmin):
    list_display = ["slug", "module", "is_active", "deployed_at", "missing"]
    list_filter = ["is_active"]
    search_fields = ["slug", "module"]
    readonly_fields = ["slug", "module", "is_active", "deployed_at", "code_fingerprint", "created_at", "missing"]
    inlines = [SecretNameInline, CapabilityInline, ToolInline, SyncInline, WebhookInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # workers come from code: `python manage.py workers deploy`

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every field comes from the code: the page is a view, with no Save button

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # removing a worker from WORKER_MODULES and deploying marks it inactive

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        # What the "missing secrets" column needs for a whole page in three queries, not three a row.
        # Only what secret_names() reads: the list decrypts nothing (not a literal client secret).
        active = OAuthCapability.objects.filter(is_active=True).only(
            "worker_id", "is_active", "client_id", "client_secret_ref"
        )
        signed = Webhook.objects.filter(is_active=True, signature__isnull=False)
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("capabilities", active.order_by(), to_attr="_capabilities"),
                Prefetch("webhooks", signed.order_by(), to_attr="_hooks"),
                Prefetch("secrets", Secret.objects.only("worker_id", "name").order_by(), to_attr="_secrets"),
            )
        )

    @admin.display(description=_("missing secrets"))
    def missing(self, obj: Worker) -> str:
        if not hasattr(obj, "_secrets"):
            return ", ".join(missing_secrets(obj)) or "-"
        return ", ".join(missing_among(obj._capabilities, obj._hooks, (s.name for s in obj._secrets))) or "-"
