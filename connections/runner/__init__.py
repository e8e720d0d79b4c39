"""Executing workers' code: tools, syncs and webhook handlers, each execution recorded as a run."""

from __future__ import annotations

from .runs import Outcome, RunContext
from .syncs import execute_sync, start_sync
from .tools import execute_tool, start_tool, validate_input
from .webhooks import execute_webhook, receive

__all__ = [
    "Outcome",
    "RunContext",
    "execute_sync",
    "execute_tool",
    "execute_webhook",
    "receive",
    "start_sync",
    "start_tool",
    "validate_input",
]
