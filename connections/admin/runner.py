"""Tools, syncs, webhooks, runs, and the databases syncs fill."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ..models import Record, Run, Sync, SyncedDatabase, Tool, Webhook, WebhookEvent


class CodeDefinedAdmin(admin.ModelAdmin):
    """Rows written by deploy: viewable, not editable."""

    list_select_related = ["worker"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tool)
class ToolAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "title", "is_active"]
    list_filter = ["is_active", "worker"]
    search_fields = ["key", "title", "worker__slug"]


@admin.register(Sync)
class SyncAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "database", "schedule", "mode", "is_active", "last_cycle_completed_at"]
    list_filter = ["is_active", "mode", "worker"]
    search_fields = ["key", "worker__slug"]
    list_select_related = ["worker", "database"]


@admin.register(Webhook)
class WebhookAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "is_active"]
    list_filter = ["is_active", "worker"]
    search_fields = ["key", "worker__slug"]


@admin.register(SyncedDatabase)
class SyncedDatabaseAdmin(CodeDefinedAdmin):
    list_display = ["key", "title", "worker", "is_active"]
    search_fields = ["key", "title", "worker__slug"]


@admin.register(Record)
class RecordAdmin(CodeDefinedAdmin):
    list_display = ["key", "database", "updated_at"]
    list_filter = ["database"]
    search_fields = ["key", "search_text"]
    list_select_related = ["database"]


@admin.register(Run)
class RunAdmin(CodeDefinedAdmin):
    list_display = ["id", "kind", "target", "worker", "status", "attempts", "queued_at", "duration"]
    list_filter = ["kind", "status", "worker"]
    search_fields = ["target", "error"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "path", "status", "reason", "body_size", "received_at"]
    list_filter = ["status"]
    search_fields = ["path", "reason"]
    exclude = ["body"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
