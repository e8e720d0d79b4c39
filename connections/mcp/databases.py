"""Synced databases for MCP clients: a query tool each (filter, search, sort, cursor pages) and a schema resource."""

from __future__ import annotations

import base64
import hashlib
import json
from types import SimpleNamespace
from typing import Any

from ..conf import app_settings
from ..exceptions import InvalidToolInputError, WorkerNotFound
from ..logging import redact
from ..models import SyncedDatabase
from ..runner.capture import known_secrets
from ..runner.tools import validate_input
from .names import query_name

# Property types whose filter matches text anywhere in the value (case-insensitive); others match exactly.
TEXT_TYPES = {"title", "rich_text", "url", "email", "phone_number"}
SCHEMA_URI = "workers://{worker}/databases/{key}/schema"


def database_row(worker: str, key: str) -> SyncedDatabase:
    db = SyncedDatabase.objects.select_related("worker").filter(worker__slug=worker, key=key, is_active=True).first()
    if db is None:
        raise WorkerNotFound(f"No active database {key!r} in worker {worker}: run `python manage.py workers deploy`.")
    return db


def query_input_schema(db: SyncedDatabase) -> dict[str, Any]:
    names = sorted(db.properties)
    return {
        "type": "object",
        "properties": {
            "filter": {
                "type": "object",
                "description": (
                    "Property name to value: a record matches when each property equals the value (text "
                    "properties: contains it, ignoring case; multi-value properties: include it)."
                ),
                "properties": {
                    name: {"description": f"{db.properties[name].get('type', '')} property"} for name in names
                },
                "additionalProperties": False,
            },
            "search": {"type": "string", "description": "Text that each record contains somewhere (ignoring case)."},
            "sort": {
                "type": "object",
                "properties": {
                    "property": {"enum": names},
                    "direction": {"enum": ["ascending", "descending"], "default": "ascending"},
                },
                "required": ["property"],
                "additionalProperties": False,
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": app_settings.MCP_QUERY_MAX_LIMIT, "default": 25},
            "cursor": {"type": "string", "description": "next_cursor of the previous page of the same query."},
        },
        "additionalProperties": False,
    }


def query_output_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "properties": {"type": "object"}},
                    "required": ["key", "properties"],
                },
            },
            "total": {"type": "integer", "description": "Records matching the query, on every page."},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["records", "total", "next_cursor"],
    }


def schema_document(db: SyncedDatabase) -> dict[str, Any]:
    """The schema resource: what a client needs to write a query."""
    return {
        "worker": db.worker.slug,
        "database": db.key,
        "title": db.title,
        "primary_key": db.primary_key,
        "properties": db.properties,
        "query_tool": query_name(db.worker.slug, db.key),
    }


def _matches(prop: dict[str, Any] | None, wanted: Any) -> bool:
    if not isinstance(prop, dict):
        return wanted is None
    value, kind = prop.get("value"), prop.get("type")
    if isinstance(value, list):
        return wanted in value if not isinstance(wanted, list) else all(item in value for item in wanted)
    if kind == "date" and isinstance(value, dict):
        return value.get("start") == wanted or value == wanted
    if kind in TEXT_TYPES and isinstance(wanted, str):
        return wanted.casefold() in str(value or "").casefold()
    return value == wanted


def _sort_key(prop: dict[str, Any] | None) -> tuple[int, str, Any]:
    value = prop.get("value") if isinstance(prop, dict) else None
    if isinstance(value, dict):  # a date: its start
        value = value.get("start")
    if value is None or value == [] or value == "":
        return (1, "", "")  # empty last, whatever the direction
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (0, "s", str(value).casefold() if not isinstance(value, list) else json.dumps(value))
    return (0, "n", value)


def _fingerprint(args: dict[str, Any]) -> str:
    what = {name: args.get(name) for name in ("filter", "search", "sort")}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _encode_cursor(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": fingerprint}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, query = int(data["o"]), data["q"]
    except (ValueError, TypeError, KeyError):
        raise InvalidToolInputError('Invalid input: field "cursor" is not a cursor this tool returned.', field="cursor")
    if query != fingerprint or offset < 0:
        raise InvalidToolInputError(
            'Invalid input: field "cursor" belongs to another query (same filter, search and sort are needed).',
            field="cursor",
        )
    return offset


def query(worker: str, key: str, args: dict[str, Any] | None, tool_name: str) -> dict[str, Any]:
    """One page of the database's records, their properties as typed values ({"type", "value"})."""
    db = database_row(worker, key)
    args = args if args is not None else {}
    # The same validation (depth, Unicode, schema, the field named) as a worker's tool input.
    validate_input(SimpleNamespace(key=tool_name, schema=query_input_schema(db), output_schema=None), args)
    limit = min(int(args.get("limit", 25)), app_settings.MCP_QUERY_MAX_LIMIT)
    fingerprint = _fingerprint(args)
    offset = _decode_cursor(args["cursor"], fingerprint) if args.get("cursor") else 0

    rows = db.records.order_by("key")
    if args.get("search"):
        rows = rows.filter(search_text__icontains=args["search"])
    filters = args.get("filter") or {}
    sort = args.get("sort")
    if not filters and not sort:
        # The database does the paging; nothing has to be read beyond the page.
        total = rows.count()
        page = list(rows.values("key", "properties")[offset : offset + limit])
    else:
        records = [
            r
            for r in rows.values("key", "properties").iterator()
            if all(_matches(r["properties"].get(name), wanted) for name, wanted in filters.items())
        ]
        if sort:
            descending = sort.get("direction") == "descending"
            records.sort(key=lambda r: r["key"])
            present = [r for r in records if _sort_key(r["properties"].get(sort["property"]))[0] == 0]
            empty = [r for r in records if _sort_key(r["properties"].get(sort["property"]))[0] == 1]
            present.sort(key=lambda r: _sort_key(r["properties"].get(sort["property"]))[1:], reverse=descending)
            records = present + empty
        total = len(records)
        page = records[offset : offset + limit]
    end = offset + len(page)
    result = {
        "records": [{"key": r["key"], "properties": r["properties"]} for r in page],
        "total": total,
        "next_cursor": _encode_cursor(end, fingerprint) if end < total else None,
    }
    # Worker code fills the records: a secret or token it copied into one is blanked, as in a run's result.
    text = json.dumps(result, ensure_ascii=False)
    cleaned = redact(text, known_secrets(worker))
    return result if cleaned == text else json.loads(cleaned)
