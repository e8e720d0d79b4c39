"""The admin site (outside connections/admin/, which registers onto it: importing that package
while the site is being created would register onto a copy). Its index is the overview ("is everything healthy?") above the usual list of models."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from .overview import build_overview


class WorkersAdminSite(admin.AdminSite):
    site_header = _("Notion Workers")
    site_title = _("Notion Workers")
    index_title = _("Overview")
    index_template = "admin/connections/overview.html"
    # The site has no pages of its own: "View site" leads to `/`, which sends people here.
    site_url = "/"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"overview": build_overview(request.user), **(extra_context or {})}
        return super().index(request, context)
