"""Tools (with a Run form), syncs (Run now), runs, webhook events, and the databases syncs fill."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import get_script_prefix, get_urlconf, path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import jsondata
from ..exceptions import InvalidJSONError, InvalidToolInputError, RunNotCancellable, WorkersError
from ..fields import EncryptedTextField
from ..models import Record, Run, Sync, SyncedDatabase, Tool, Webhook, WebhookEvent, WebhookRefusalCount
from ..runner.cancel import cancel_run
from ..runner.runs import unsent_note
from ..runner.syncs import start_sync
from ..runner.tools import start_tool
from ..sdk.jsonschema import node_type

# Characters of a run's error in the runs list's hover text; the run's page has all of it.
ERROR_TITLE_LIMIT = 2000


@functools.lru_cache(maxsize=64)
def _url_parts(name: str, prefix: str, urlconf: Any) -> tuple[str, str]:
    url = reverse(name, args=["0"], urlconf=urlconf)
    head, _sep, tail = url.rpartition("/0/")
    return f"{head}/", f"/{tail}"


def pk_url(name: str, pk: int) -> str:
    """reverse(name, args=[pk]) for an integer pk, from one reverse() per URL (a list cell's link)."""
    head, tail = _url_parts(name, get_script_prefix(), get_urlconf())
    return f"{head}{pk}{tail}"


@functools.lru_cache(maxsize=64)
def _plain_url(name: str, prefix: str, urlconf: Any) -> str:
    return reverse(name, urlconf=urlconf)


class QuickChangeList(ChangeList):
    """Django's ChangeList, with each row's link built from one reverse() per page, not one a row,
    and its rows rendered by `rows.RowRenderer` (the same HTML, each column worked out once a page)."""

    @cached_property
    def change_url_parts(self) -> tuple[str, str]:
        """The change URL of any row with an integer pk: head + pk + tail."""
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=("0",),
            current_app=self.model_admin.admin_site.name,
        )
        head, _sep, tail = url.rpartition("/0/")
        return f"{head}/", f"/{tail}"

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        queryset = super().get_queryset(request, exclude_parameters)
        deferred = getattr(self.model_admin, "list_deferred_fields", None)
        return queryset.defer(*deferred()) if deferred else queryset

    def url_for_result(self, result: Any) -> str:
        pk = getattr(result, self.pk_attname)
        if not isinstance(pk, int):
            return super().url_for_result(result)
        head, tail = self.change_url_parts
        return f"{head}{pk}{tail}"


class ScalableAdmin(admin.ModelAdmin):
    """A changelist whose cost does not grow with its table (one COUNT(*) per page, not two) and
    whose rows cost less to render."""

    # With a filter on, Django counts the whole table too ("5 results (100,000 total)").
    show_full_result_count = False
    # Columns no list column reads (long texts, JSON documents), left unread for a list page.
    list_deferred: tuple[str, ...] = ()

    # Django's changelist with its rows rendered by rows.RowRenderer ({% quick_result_list %}).
    change_list_template = "admin/connections/quick_change_list.html"

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return QuickChangeList

    def get_list_filter(self, request: HttpRequest) -> Sequence[Any]:
        # A filter named by a foreign key ("worker") would list every related row on every page.
        return [
            (name, RelatedChoicesFilter) if isinstance(name, str) and self._related_model(name) else name
            for name in super().get_list_filter(request)
        ]

    def list_deferred_fields(self) -> list[str]:
        """`list_deferred`, and every encrypted column of the rows and of their list_select_related
        rows: a list decrypts nothing (each value would be decrypted on loading the row)."""
        fields = list(self.list_deferred)
        related = self.list_select_related if isinstance(self.list_select_related, (list, tuple)) else []
        for prefix, model in [("", self.model), *((f"{name}__", self._related_model(name)) for name in related)]:
            if model is not None:
                fields += [
                    f"{prefix}{f.name}" for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
                ]
        return fields

    def _related_model(self, path: str) -> Any:
        model = self.model
        for name in path.split("__"):
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                return None
            if not field.is_relation or field.many_to_many or field.one_to_many:
                return None
            model = field.related_model
        return model

    def action_checkbox(self, obj: Any) -> str:
        # Django's markup exactly, without rendering a form widget's template for each row (a third
        # of a row's cost on a list with actions).
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )


class RelatedChoicesFilter(admin.RelatedFieldListFilter):
    """Filter by a related row, its choices read in one query (their workers joined: their names
    show the worker's slug) and at most LIMIT of them: Django's own filter reads every related row,
    then the worker of each one by one. Any other row is still filtered by its id in the URL."""

    LIMIT = 200

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        related = field.remote_field.model
        # Their names only: JSON documents (a database's properties) left unread, and decoded.
        documents = [f.name for f in related._meta.concrete_fields if isinstance(f, models.JSONField)]
        rows = related._default_manager.defer(*documents)
        if any(f.name == "worker" for f in related._meta.fields):
            rows = rows.select_related("worker")
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            rows = rows.order_by(*ordering)
        return [(row.pk, str(row)) for row in rows[: self.LIMIT]]


class CodeDefinedAdmin(ScalableAdmin):
    """Rows written by deploy or by runs: viewable, not editable."""

    list_select_related = ["worker"]
    # By the (worker, key) unique index, not the worker's slug (a join and a sort of the whole table).
    ordering = ["worker_id", "key"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pre(value: Any) -> str:
    if value in (None, "", {}, []):
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text)


# --- the Run form of a tool, generated from its input schema -----------------------------


class JSONInputField(forms.JSONField):
    """JSON typed into the Run form, parsed by `jsondata`: nested too deep or holding text that is not
    valid Unicode is a form error. Django's own field lets RecursionError through (a 500), and would
    echo a lone surrogate back into the page, which then cannot be encoded."""

    def to_python(self, value: Any) -> Any:
        if self.disabled or value in self.empty_values or not isinstance(value, (str, bytes)):
            return super().to_python(value)
        try:
            converted = jsondata.loads(value, what=str(self.label or _("The value")))
        except InvalidJSONError as exc:
            raise ValidationError(str(exc), code="invalid") from None
        return forms.fields.JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled or data is None or not isinstance(data, (str, bytes)):
            return super().bound_data(data, initial)
        try:
            return jsondata.loads(data, what="")
        except InvalidJSONError:
            # Shown again exactly as typed (escapes and all), beside its error.
            return forms.fields.InvalidJSONInput(data)


def schema_field(node: dict[str, Any], *, required: bool, label: str) -> forms.Field:
    """A form field for one property of a tool's input schema; anything unusual is entered as JSON."""
    common: dict[str, Any] = {"required": required, "label": label, "help_text": node.get("description", "")}
    if "enum" in node:
        choices = [(json.dumps(value), str(value)) for value in node["enum"]]
        if not required:
            choices.insert(0, ("", "---------"))
        return forms.TypedChoiceField(choices=choices, coerce=json.loads, empty_value=None, **common)
    kind, _nullable = node_type(node)
    if kind == "string":
        return forms.CharField(min_length=node.get("minLength"), max_length=node.get("maxLength"), **common)
    if kind == "integer":
        return forms.IntegerField(min_value=node.get("minimum"), max_value=node.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=node.get("minimum"), max_value=node.get("maximum"), **common)
    if kind == "boolean":
        if required:
            return forms.TypedChoiceField(
                choices=[("true", _("Yes")), ("false", _("No"))], coerce=lambda v: v == "true", **common
            )
        return forms.NullBooleanField(**common)
    common["help_text"] = " ".join(filter(None, [str(common["help_text"]), str(_("As JSON."))]))
    return JSONInputField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), **common)


class ToolRunForm(forms.Form):
    """Built per tool by `tool_form`; `tool_input()` drops optional fields left empty."""

    def tool_input(self) -> dict[str, Any]:
        data = {}
        for name, value in self.cleaned_data.items():
            if value is None or (value == "" and not self.fields[name].required):
                continue
            data[name] = value
        return data


def tool_form(schema: dict[str, Any]) -> type[ToolRunForm]:
    required = set(schema.get("required", []))
    fields = {
        name: schema_field(node if isinstance(node, dict) else {}, required=name in required, label=name)
        for name, node in (schema.get("properties") or {}).items()
    }
    return type("ToolRunForm", (ToolRunForm,), fields)


@admin.register(Tool)
class ToolAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "title", "is_active", "run_link"]
    list_deferred = ("description", "input_schema", "output_schema", "hints")
    list_filter = ["is_active", "worker"]
    search_fields = ["key", "title", "worker__slug"]
    readonly_fields = ["input_schema_display", "output_schema_display"]
    fields = ["worker", "key", "title", "description", "hints", "is_active", "input_schema_display",
              "output_schema_display"]  # fmt: skip
    change_form_template = "admin/connections/tool/change_form.html"

    @admin.display(description=_("input schema"))
    def input_schema_display(self, obj: Tool) -> str:
        return _pre(obj.input_schema)

    @admin.display(description=_("output schema"))
    def output_schema_display(self, obj: Tool) -> str:
        return _pre(obj.output_schema)

    @admin.display(description=_("run"))
    def run_link(self, obj: Tool) -> str:
        if not obj.is_active:
            return "-"
        return format_html('<a href="{}">{}</a>', pk_url("admin:connections_tool_run", obj.pk), _("Run"))

    def get_urls(self) -> list[Any]:
        return [
            path("<path:object_id>/run/", self.admin_site.admin_view(self.run_view), name="connections_tool_run"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"can_run": request.user.has_perm("connections.run_tool"), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("connections.run_tool"):
            raise PermissionDenied
        tool = get_object_or_404(Tool.objects.select_related("worker"), pk=object_id)
        form_class = tool_form(tool.input_schema or {})
        form = form_class(request.POST or None)
        if not tool.is_active:
            messages.error(request, _("This tool is no longer in the worker's code."))
        elif request.method == "POST" and form.is_valid():
            try:
                run = start_tool(tool.worker.slug, tool.key, form.tool_input(), trigger="admin")
            except InvalidToolInputError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            except WorkersError as exc:
                form.add_error(None, str(exc))
            else:
                _report_queued(request, run, f"Tool {tool.key} queued as run #{run.pk}.")
                return HttpResponseRedirect(reverse("admin:connections_run_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run {tool.title or tool.key}",
            "opts": self.model._meta,
            "original": tool,
            "tool": tool,
            "form": form,
            "recent_runs": Run.objects.filter(tool=tool).order_by("-queued_at")[:10],
        }
        return TemplateResponse(request, "admin/connections/tool/run.html", context)


def _report_queued(request: HttpRequest, run: Run, text: str) -> None:
    if run.unsent:
        messages.warning(request, unsent_note(run))
    else:
        messages.success(request, text)


# --- syncs: Run now --------------------------------------------------------------------


@admin.register(Sync)
class SyncAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "database", "schedule", "mode", "is_active", "cycle", "cycle_in_progress",
                    "last_cycle_completed_at"]  # fmt: skip
    list_filter = ["is_active", "mode", "worker"]
    search_fields = ["key", "worker__slug"]
    list_select_related = ["worker", "database"]
    list_deferred = ("state", "database__properties")
    readonly_fields = ["state_display"]
    exclude = ["state", "running_run"]
    actions = ["run_now"]
    change_form_template = "admin/connections/sync/change_form.html"

    @admin.display(description=_("state"))
    def state_display(self, obj: Sync) -> str:
        return _pre(obj.state)

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("connections.run_sync")

    @admin.action(description=_("Run the selected syncs now"), permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Sync]) -> None:
        count, refused = 0, None
        for sync in queryset.filter(is_active=True):
            run = start_sync(sync, trigger="admin")
            if run.unsent:
                refused = run  # the others would each wait out the broker too: left for another try
                break
            count += 1
        if count or refused is None:
            self.message_user(request, f"Queued {count} sync run{'s' if count != 1 else ''}.", messages.SUCCESS)
        if refused is not None:
            self.message_user(request, f"{unsent_note(refused)} The syncs after it were not started.", messages.WARNING)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(require_POST(self.run_view))
        return [path("<path:object_id>/run/", view, name="connections_sync_run"), *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        runs = Run.objects.filter(sync_id=object_id).order_by("-queued_at")[:10] if object_id.isdigit() else []
        extra = {"can_run": self.has_run_permission(request), "recent_runs": runs, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_run_permission(request):
            raise PermissionDenied
        sync = get_object_or_404(Sync.objects.select_related("worker"), pk=object_id)
        if not sync.is_active:
            messages.error(request, _("This sync is no longer in the worker's code."))
            return HttpResponseRedirect(reverse("admin:connections_sync_change", args=[sync.pk]))
        run = start_sync(sync, trigger="admin")
        _report_queued(request, run, f"Sync {sync.key} queued as run #{run.pk}.")
        return HttpResponseRedirect(reverse("admin:connections_run_change", args=[run.pk]))


@admin.register(Webhook)
class WebhookAdmin(CodeDefinedAdmin):
    list_display = ["key", "worker", "url", "is_active"]
    list_filter = ["is_active", "worker"]
    search_fields = ["key", "worker__slug"]

    @admin.display(description=_("URL"))
    def url(self, obj: Webhook) -> str:
        return obj.get_absolute_path()


# --- databases and their records -------------------------------------------------------


@admin.register(SyncedDatabase)
class SyncedDatabaseAdmin(CodeDefinedAdmin):
    list_display = ["key", "title", "worker", "record_count", "is_active"]
    list_deferred = ("properties",)
    search_fields = ["key", "title", "worker__slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncedDatabase]:
        # A count per database shown, read from the (database, key) index; a join with GROUP BY
        # would sort every record of every database for one page.
        records = (
            Record.objects.filter(database=OuterRef("pk"))
            .order_by()
            .values("database")
            .annotate(n=Count("*"))
            .values("n")
        )
        count = Coalesce(Subquery(records, output_field=IntegerField()), 0)
        return super().get_queryset(request).annotate(_records=count)

    @admin.display(description=_("records"), ordering="_records")
    def record_count(self, obj: SyncedDatabase) -> str:
        url = _plain_url("admin:connections_record_changelist", get_script_prefix(), get_urlconf())
        url += f"?database__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj._records)


def display_value(value: Any) -> str:
    """A property value as text: `{"type": "title", "value": "Bug"}` shows as Bug."""
    inner = value.get("value") if isinstance(value, dict) and "type" in value else value
    if inner is None:
        return ""
    if isinstance(inner, list):
        return ", ".join(str(v) for v in inner)
    if isinstance(inner, dict):
        if "start" in inner:
            return " → ".join(str(v) for v in (inner.get("start"), inner.get("end")) if v)
        return json.dumps(inner, ensure_ascii=False)
    return str(inner)


# Property types whose values are JSON numbers or booleans: sorted as such, not as their text.
TYPED_SORT = {"number", "checkbox"}


def _property_column(name: str, declaration: Any) -> Any:
    def column(obj: Record) -> str:
        return display_value(obj.properties.get(name))

    column.short_description = name  # type: ignore[attr-defined]
    kind = declaration.get("type") if isinstance(declaration, dict) else None
    value = KeyTransform("value", KeyTransform(name, "properties"))
    # A JSON value sorts by its type on both databases (numbers by value: 2 before 10); its text
    # would sort "10" before "2". Text properties sort as text.
    ordering = value if kind in TYPED_SORT else KeyTextTransform("value", KeyTransform(name, "properties"))
    column.admin_order_field = ordering  # type: ignore[attr-defined]
    return column


@admin.register(Record)
class RecordAdmin(CodeDefinedAdmin):
    list_display = ["record_key", "database", "summary", "updated_at"]
    list_filter = [("database", RelatedChoicesFilter)]
    search_fields = ["key", "search_text"]
    list_select_related = ["database"]
    list_deferred = ("search_text", "database__properties")
    # Numbers in keys sort as numbers (2 before 10), on the (database, sort_key) index; the
    # database's own ordering (worker slug, key) would join and sort every record. The id last
    # makes the order total, so Django appends no "-pk" (which SQLite sorted the table for); it
    # is the index's own tie-break on SQLite, and a sort of a few equal keys on PostgreSQL.
    ordering = ["database_id", "sort_key", "id"]
    readonly_fields = ["properties_table"]
    fields = ["database", "key", "properties_table", "cycle", "created_at", "updated_at"]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        # Filtered to one database, each of its properties gets a column.
        database_id = request.GET.get("database__id__exact", "")
        database = SyncedDatabase.objects.filter(pk=database_id).first() if database_id.isdigit() else None
        if database is None:
            return list(self.list_display)
        return [
            "record_key",
            *(_property_column(name, kind) for name, kind in database.in_declared_order(database.properties)),
            "updated_at",
        ]

    @admin.display(description=_("key"), ordering="sort_key")
    def record_key(self, obj: Record) -> str:
        return obj.key

    @admin.display(description=_("properties"))
    def summary(self, obj: Record) -> str:
        pairs = obj.database.in_declared_order(obj.properties)
        text = "; ".join(f"{name}: {display_value(value)}" for name, value in pairs)
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.display(description=_("properties"))
    def properties_table(self, obj: Record) -> str:
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (name, value.get("type", "") if isinstance(value, dict) else "", display_value(value))
                for name, value in obj.database.in_declared_order(obj.properties)
            ),
        )
        return format_html("<table><tbody>{}</tbody></table>", rows)


# --- runs and webhook events -----------------------------------------------------------


class TriggerFilter(admin.SimpleListFilter):
    """The triggers this code writes; Django's own filter reads the distinct ones from every run."""

    title = _("trigger")
    parameter_name = "trigger"
    TRIGGERS = ["admin", "cli", "cli-local", "mcp", "schedule", "webhook"]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(trigger, trigger) for trigger in self.TRIGGERS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        # Any value in the URL filters, one no code here writes included (start_tool(trigger=...)).
        return queryset.filter(trigger=self.value()) if self.value() is not None else None


@admin.register(Run)
class RunAdmin(CodeDefinedAdmin):
    list_display = ["id", "kind", "target", "worker", "status", "attempts", "trigger", "api_key_name", "queued_at",
                    "duration_display", "short_error"]  # fmt: skip
    list_filter = ["status", "kind", TriggerFilter, "worker", ("api_key", RelatedChoicesFilter), "queued_at"]
    search_fields = ["target", "error", "worker__slug", "api_key_name"]
    # No date_hierarchy: its links are the distinct days/months/years of every run (a scan of the
    # table per page); the "queued" filter (today, past 7 days, this month, this year) costs nothing.
    list_select_related = ["worker"]
    list_deferred = ("input", "result", "traceback", "log", "progress")
    ordering = ["-queued_at"]
    change_form_template = "admin/connections/run/change_form.html"
    fields = ["kind", "worker", "target", "status", "unsent", "trigger", "api_key_name", "attempts", "queued_at", "due_at", "started_at",
              "finished_at", "duration_display", "cancel_requested_at", "cancelled_by", "owner", "code_display", "input_display", "result_display", "result_truncated", "progress_display",
              "error", "traceback_display", "log_display", "webhook_event"]  # fmt: skip
    readonly_fields = ["due_at", "duration_display", "code_display", "input_display", "result_display",
                       "progress_display", "traceback_display", "log_display"]  # fmt: skip
    actions = ["cancel_selected"]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("connections.cancel_run")

    @admin.action(description=_("Cancel selected runs"), permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        by = f"{request.user.get_username()} in the admin"
        stopped = asked = ended = 0
        for run_id in queryset.values_list("pk", flat=True):
            try:
                done = cancel_run(run_id, by)
            except RunNotCancellable:
                ended += 1
                continue
            if done.stopped:
                stopped += 1
            else:
                asked += 1
        parts = []
        if stopped:
            parts.append(f"{stopped} run{'s' if stopped != 1 else ''} cancelled (will not run)")
        if asked:
            parts.append(f"{asked} running run{'s' if asked != 1 else ''} asked to stop")
        if ended:
            parts.append(f"{ended} already finished, left as {'they were' if ended != 1 else 'it was'}")
        level = messages.SUCCESS if stopped or asked else messages.WARNING
        self.message_user(request, "; ".join(parts).capitalize() + ".", level)

    @admin.display(description=_("duration"))
    def duration_display(self, obj: Run) -> str:
        return f"{obj.duration.total_seconds():.2f} s" if obj.duration is not None else "-"

    @admin.display(description=_("error"))
    def short_error(self, obj: Run) -> str:
        # The whole first line, cut by the browser at the column's width with an ellipsis; the
        # full text on hover, and on the run's page.
        if obj.status == Run.Status.RUNNING and obj.cancel_requested_at is not None:
            return f"Cancel requested by {obj.cancelled_by}"
        if obj.unsent and obj.status in Run.NOT_STARTED:
            return _("Not sent yet: the broker refused its message (sent again every minute)")
        if not obj.error:
            return obj.code_warning or "-"
        line = obj.error.splitlines()[0] if obj.error.strip() else obj.error
        return format_html(
            '<span title="{}" style="display:inline-block;max-width:40em;overflow:hidden;'
            'text-overflow:ellipsis;white-space:nowrap;vertical-align:bottom">{}</span>',
            obj.error[:ERROR_TITLE_LIMIT],
            line,
        )

    @admin.display(description=_("worker code"))
    def code_display(self, obj: Run) -> str:
        if obj.code_mismatch:
            return obj.code_warning
        return _("as deployed") if obj.code_fingerprint else "-"

    @admin.display(description=_("input"))
    def input_display(self, obj: Run) -> str:
        return _pre(obj.input)

    @admin.display(description=_("result"))
    def result_display(self, obj: Run) -> str:
        return _pre(obj.result)

    @admin.display(description=_("progress"))
    def progress_display(self, obj: Run) -> str:
        progress = {k: v for k, v in (obj.progress or {}).items() if k != "recent_pages"}
        return _pre(progress)

    @admin.display(description=_("traceback"))
    def traceback_display(self, obj: Run) -> str:
        return _pre(obj.traceback)

    @admin.display(description=_("log output"))
    def log_display(self, obj: Run) -> str:
        return _pre(obj.log)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ScalableAdmin):
    list_display = ["id", "path", "status", "reason", "body_size", "received_at"]
    list_filter = ["status", ("webhook", RelatedChoicesFilter), "received_at"]
    search_fields = ["path", "reason"]
    # The "received" filter instead of a date_hierarchy (see RunAdmin).
    exclude = ["body"]
    list_select_related = ["webhook"]
    list_deferred = ("headers", "body")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ScopeFilter(admin.SimpleListFilter):
    """The webhooks' scopes ("worker/key", at most RelatedChoicesFilter.LIMIT) and unknown paths, from
    the webhooks table: Django's own filter reads the distinct scopes from every count."""

    title = _("webhook")
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        hooks = Webhook.objects.select_related("worker").order_by("worker_id", "key")[: RelatedChoicesFilter.LIMIT]
        return [("", _("(unknown paths)")), *((f"{h.worker.slug}/{h.key}",) * 2 for h in hooks)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        return queryset.filter(scope=self.value()) if self.value() is not None else None


@admin.register(WebhookRefusalCount)
class WebhookRefusalCountAdmin(ScalableAdmin):
    """Refused webhook requests per hour, including those not stored (unknown paths, over the hourly cap)."""

    list_display = ["hour", "scope_display", "refused", "stored"]
    list_filter = [ScopeFilter, "hour"]
    # The "hour" filter instead of a date_hierarchy (see RunAdmin).

    @admin.display(description=_("webhook"), ordering="scope")
    def scope_display(self, obj: WebhookRefusalCount) -> str:
        return obj.scope or str(_("(unknown paths)"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
