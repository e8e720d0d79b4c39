"""Pacers as deployed, each with its declared rate and the requests it let go in the last minute."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import Pacer
from ..pacers import describe_backend, requests_last_minute_of
from .runner import CodeDefinedAdmin


@admin.register(Pacer)
class PacerAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "rate", "last_minute", "is_active"]
    list_filter = ["is_active", "worker"]
    search_fields = ["key", "worker__slug"]
    fields = ["worker", "key", "rate", "last_minute", "budget", "is_active"]
    readonly_fields = ["rate", "last_minute", "budget"]

    @admin.display(description=_("allowed rate"))
    def rate(self, obj: Pacer) -> str:
        per_second = obj.allowed_requests * 1000 / obj.interval_ms
        return f"{obj.allowed_requests} per {obj.interval_ms} ms ({per_second:g}/s)"

    @admin.display(description=_("requests in the last minute"))
    def last_minute(self, obj: Pacer) -> str:
        # On Redis one small read per row (at most 60 counters, no SQL); on the database, the row itself.
        count = requests_last_minute_of(obj)
        return "unavailable" if count is None else str(count)

    @admin.display(description=_("budget kept on"))
    def budget(self, obj: Pacer) -> str:
        return describe_backend()
