"""What an MCP client sees: each active tool and one query tool per synced database, named uniquely, scoped by key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ApiKeyError
from ..models import ApiKey, SyncedDatabase, Tool, Worker
from .databases import query_input_schema, query_output_schema
from .names import query_name, tool_name

# The SDK's hints, spelled as worker code writes them, and the MCP annotation each one becomes.
HINTS = {
    "read_only": "read_only_hint",
    "destructive": "destructive_hint",
    "idempotent": "idempotent_hint",
    "open_world": "open_world_hint",
}


@dataclass(frozen=True)
class Entry:
    """One MCP tool: a worker's tool (`kind="tool"`) or a database's query tool (`kind="query"`)."""

    name: str
    kind: str
    worker: str
    key: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any] = field(default_factory=dict)

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.get("read_only_hint"))


def annotations_of(hints: dict[str, Any]) -> dict[str, Any]:
    return {HINTS[name]: bool(value) for name, value in (hints or {}).items() if name in HINTS}


def all_entries() -> list[Entry]:
    """Every active tool and database query of every active worker, in a stable order."""

    entries: list[Entry] = []
    tools = Tool.objects.filter(is_active=True, worker__is_active=True).select_related("worker")
    for tool in tools.order_by("worker__slug", "key"):
        entries.append(
            Entry(
                name=tool_name(tool.worker.slug, tool.key),
                kind="tool",
                worker=tool.worker.slug,
                key=tool.key,
                title=tool.title or tool.key,
                description=tool.description,
                input_schema=tool.input_schema or {"type": "object"},
                output_schema=tool.output_schema,
                annotations=annotations_of(tool.hints),
            )
        )
    databases = SyncedDatabase.objects.filter(is_active=True, worker__is_active=True).select_related("worker")
    for db in databases.order_by("worker__slug", "key"):
        entries.append(
            Entry(
                name=query_name(db.worker.slug, db.key),
                kind="query",
                worker=db.worker.slug,
                key=db.key,
                title=f"Query {db.title or db.key}",
                description=(
                    f"Read the records of the synced database {db.title or db.key!r} (worker {db.worker.slug}): "
                    "filter by property values, search text, sort, and page with the returned cursor."
                ),
                input_schema=query_input_schema(db),
                output_schema=query_output_schema(),
                annotations={"read_only_hint": True, "destructive_hint": False, "idempotent_hint": True},
            )
        )
    seen: set[str] = set()
    unique = []
    for entry in entries:
        # Sanitising could make two names equal (a tool "a.b" and "a_b"): the first keeps it.
        if entry.name not in seen:
            seen.add(entry.name)
            unique.append(entry)
    return unique


def allows(key: ApiKey, entry: Entry) -> bool:
    """Whether `key` may see and call `entry`."""
    if key.workers and entry.worker not in key.workers:
        return False
    if key.tools and entry.name not in key.tools:
        return False
    if key.read_only and not entry.read_only:
        return False
    return True


def visible(key: ApiKey) -> list[Entry]:
    return [entry for entry in all_entries() if allows(key, entry)]


def find(key: ApiKey, name: str) -> Entry | None:
    """The entry called `name` if `key` may call it; None alike for unknown and out of scope (no probing)."""
    for entry in all_entries():
        if entry.name == name:
            return entry if allows(key, entry) else None
    return None


def check_scope(workers: list[str], tools: list[str]) -> tuple[list[str], list[str]]:
    """The scope as stored: deployed worker slugs, and tool names as MCP clients see them.

    A tool may be given as its MCP name (`sandbox__getMe`), as `worker:tool`, or by its key alone
    when one worker declares it.
    """
    known = set(Worker.objects.values_list("slug", flat=True))
    for slug in workers:
        if slug not in known:
            raise ApiKeyError(f"No deployed worker {slug!r}: run `python manage.py workers deploy` first.")
    entries = all_entries()
    names = {entry.name for entry in entries}
    resolved: list[str] = []
    for given in tools:
        given = given.strip()
        if not given:
            continue
        if given in names:
            resolved.append(given)
            continue
        if ":" in given:
            worker, _, key = given.partition(":")
            candidate = tool_name(worker, key)
            if candidate in names:
                resolved.append(candidate)
                continue
        matches = [entry.name for entry in entries if entry.kind == "tool" and entry.key == given]
        if len(matches) == 1:
            resolved.append(matches[0])
            continue
        if matches:
            raise ApiKeyError(f"Tool {given!r} exists in several workers: name it as one of {', '.join(matches)}.")
        raise ApiKeyError(
            f"No active tool or database query {given!r}: `python manage.py workers mcp tools` lists their names."
        )
    return list(dict.fromkeys(workers)), list(dict.fromkeys(resolved))
