"""How MCP clients see the names of tools and database queries: one rule, read by the catalog and the queries."""

from __future__ import annotations

import re

# MCP tool names: letters, digits, "_", "-", "." (clients such as Claude also cap the length at 64).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
QUERY_SUFFIX = "__query"


def tool_name(worker: str, key: str) -> str:
    """`<worker>__<tool>`: the worker's slug makes the name unique on the site, and stable across deploys."""
    return _UNSAFE.sub("_", f"{worker}__{key}")


def query_name(worker: str, database: str) -> str:
    return _UNSAFE.sub("_", f"{worker}__{database}{QUERY_SUFFIX}")
