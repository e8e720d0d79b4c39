"""The types worker code's handlers receive, so it can annotate them: `def tool(input, context: RunContext)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunContext:
    """The `context` argument of tools, syncs and webhook handlers."""

    run_id: int
    kind: str
    worker: str
    key: str
    attempt: int
    local: bool = False


@dataclass
class Event:
    """What a webhook's `verify(event)` and handler see."""

    body: Any
    raw_body: bytes
    headers: dict[str, str]
    method: str
    event_id: int | None = None
    query: dict[str, str] = field(default_factory=dict)
