"""For the fan-out benchmark: a worker with one trivial tool, and the bare Celery task it is compared with.

The Celery worker imports this module (`-I`), so the bare task is registered there; the tool is
found through WORKER_MODULES like any deployed worker's.
"""

from __future__ import annotations

import os
from typing import Any

from celery import shared_task

from connections.sdk import Worker, j

worker = Worker("bench-fanout")
COUNTER = "bench-fanout:done"


@worker.tool("noop", title="No-op", schema=j.object({"n": j.integer()}))
def noop(input: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"n": input["n"]}


_redis: Any = None


@shared_task(name="benchmarks.fanout.bare", ignore_result=True)
def bare(n: int) -> int:
    """The floor: a task whose work is one Redis write, on a client kept for the process's life."""
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    _redis.incr(COUNTER)
    return n
