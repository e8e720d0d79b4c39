"""A test-only worker for the serving tests: a webhook whose check takes as long as the request asks."""

from __future__ import annotations

import time
from typing import Any

from connections.sdk import Worker

worker = Worker("serving-test")


def slow_check(event: Any) -> None:
    time.sleep(float(event.headers.get("x-delay", "0")))


@worker.webhook("slow", verify=slow_check)
def on_slow(event: Any, context: Any) -> Any:
    return {"ok": True}
