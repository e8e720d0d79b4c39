"""{% quick_result_list cl %}: Django's {% result_list cl %}, its rows rendered by RowRenderer."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import ResultList, result_list
from django.contrib.admin.templatetags.base import InclusionAdminNode

from ..admin.rows import RowRenderer

register = template.Library()


def quick_result_list(cl: Any) -> dict[str, Any]:
    if not RowRenderer.covers(cl):
        return result_list(cl)
    # Django's context with no rows to build, then the rows: each one string, so the template
    # renders one item a row instead of one a cell (the same markup).
    rows = cl.result_list
    cl.result_list = []
    try:
        context = result_list(cl)
    finally:
        cl.result_list = rows
    context["results"] = [ResultList(None, [row]) for row in RowRenderer(cl).rows()]
    return context


@register.tag(name="quick_result_list")
def quick_result_list_tag(parser: template.base.Parser, token: template.base.Token) -> InclusionAdminNode:
    return InclusionAdminNode(
        parser, token, func=quick_result_list, template_name="change_list_results.html", takes_context=False
    )
