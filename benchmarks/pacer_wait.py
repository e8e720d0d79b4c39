"""pacer.wait() when the budget is free, against its floor: one Redis round trip (PING)."""

from __future__ import annotations

import os

from django.test.utils import override_settings

from .report import Context
from .token_hot_path import _median_seconds

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def run(ctx: Context) -> None:
    rounds, calls = ctx.scale(7, 2), ctx.scale(2000, 200)
    import redis

    from connections import pacers
    from connections.models import Worker as WorkerRow
    from connections.sdk import Worker

    WorkerRow.objects.get_or_create(slug="bench", defaults={"module": "bench"})
    # A budget that is always free: a million requests a millisecond never makes anyone wait.
    pacer = Worker("bench").pacer("free", allowed_requests=1_000_000, interval_ms=1)
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        ctx.note(f"skipped: no Redis at {REDIS_URL} ({type(exc).__name__}); set BENCH_REDIS_URL")
        return
    with override_settings(WORKERS_PACER_REDIS_URL=REDIS_URL):
        pacers.reset(pacer)
        assert pacer.wait() < 0.01  # free, or the comparison means nothing
        baseline, measured = _median_seconds([client.ping, pacer.wait], rounds, calls)
        pacers.reset(pacer)
    ctx.figure(
        "pacer.wait() on Redis, budget free (one EVALSHA)",
        ratio=measured / baseline,
        baseline=f"one Redis PING ({baseline * 1e6:.0f} us)",
    )
    with override_settings(WORKERS_PACER_REDIS_URL="", CELERY_BROKER_URL="filesystem://"):
        pacers.reset(pacer)
        (database,) = _median_seconds([pacer.wait], rounds, max(1, calls // 10))
    ctx.figure(
        "pacer.wait() on the database, budget free (one locked update)",
        ratio=database / baseline,
        baseline="one Redis PING",
    )
