"""A worker with one signed webhook, for the webhook benchmark: what is measured is the path around the code."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker

worker = Worker("bench-hooks")


@worker.webhook(
    "signed",
    signature={
        "secret": worker.env("BENCH_HOOK_SECRET"),
        "header": "X-Signature",
        "algorithm": "sha256",
        "prefix": "sha256=",
        "timestamp_header": "X-Timestamp",
    },
)
def on_signed(event: Any, context: Any) -> dict[str, Any]:
    return {"n": event.body.get("n")}
