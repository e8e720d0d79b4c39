"""MCP API keys: created here (the key is shown once, on the page that follows), revoked, last use shown."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..exceptions import ApiKeyError
from ..models import ApiKey


def _names(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class ApiKeyForm(forms.ModelForm):
    workers_text = forms.CharField(
        label=_("workers"), required=False, help_text=_("Comma-separated worker slugs; empty: every worker.")
    )
    tools_text = forms.CharField(
        label=_("tools"),
        required=False,
        help_text=_("Comma-separated tool names as MCP clients see them (worker__tool); empty: every tool."),
    )

    class Meta:
        model = ApiKey
        fields = ["name", "read_only", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("workers_text", ", ".join(self.instance.workers or []))
        self.initial.setdefault("tools_text", ", ".join(self.instance.tools or []))

    def clean(self) -> dict[str, Any]:
        from ..mcp.catalog import check_scope

        data = super().clean()
        try:
            data["workers"], data["tools"] = check_scope(
                _names(data.get("workers_text", "")), _names(data.get("tools_text", ""))
            )
        except ApiKeyError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "state", "scope", "last_used_at", "expires_at", "created_at"]
    list_filter = ["read_only", "revoked_at", "created_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        fields = ["name", "workers_text", "tools_text", "read_only", "expires_at"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description=_("state"))
    def state(self, obj: ApiKey) -> str:
        from ..mcp.keys import describe

        return describe(obj)["state"]

    @admin.display(description=_("scope"))
    def scope(self, obj: ApiKey) -> str:
        from ..mcp.keys import scope_text

        return scope_text(obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        from ..mcp.keys import create_key

        if change:
            obj.workers, obj.tools = form.cleaned_data["workers"], form.cleaned_data["tools"]
            obj.save()
            return
        try:
            key, raw = create_key(
                obj.name,
                workers=form.cleaned_data["workers"],
                tools=form.cleaned_data["tools"],
                read_only=obj.read_only,
                expires_at=obj.expires_at,
            )
        except ApiKeyError as exc:  # a name taken between the form's check and now
            messages.error(request, str(exc))
            return
        obj.pk = key.pk
        obj.__dict__.update({name: getattr(key, name) for name in ("prefix", "key_hash", "created_at")})
        # Kept on the request only: the page below shows it once; no message, session or log holds it.
        request._mcp_new_key = raw  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        raw = getattr(request, "_mcp_new_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": _("API key created"),
            "opts": self.opts,
            "key": obj,
            "raw_key": raw,
        }
        response = TemplateResponse(request, "admin/connections/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("Revoked %d API key.", "Revoked %d API keys.", count) % count,
            messages.SUCCESS,
        )
