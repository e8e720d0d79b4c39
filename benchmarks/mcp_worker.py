"""A worker with one trivial tool, for the MCP benchmark: what is measured is the path around the code."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, j

worker = Worker("bench-mcp")


@worker.tool("ping", title="Ping", schema=j.object({"n": j.integer()}), hints={"read_only": True})
def ping(input: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"pong": input["n"]}
