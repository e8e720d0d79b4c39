"""pacer.wait() when the budget is free, against its floor: one Redis round trip (PING)."""

from __future__ import annotations

import os

from django.test.utils import override_settings

from .token_hot_path import _median_seconds

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def run(*, rounds: int, calls: int) -> None:
    import redis

    from connections import pacers
    from connections.models import Worker as WorkerRow
    from connections.sdk import Worker

    WorkerRow.objects.get_or_create(slug="bench", defaults={"module": "bench"})
    # A budget that is always free: a million requests a millisecond never makes anyone wait.
    pacer = Worker("bench").pacer("free", allowed_requests=1_000_000, interval_ms=1)
    print("pacer.wait() with a free budget, median of", rounds, "x", calls, "calls")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"  skipped: no Redis at {REDIS_URL} ({type(exc).__name__}); set BENCH_REDIS_URL")
        return
    with override_settings(WORKERS_PACER_REDIS_URL=REDIS_URL):
        pacers.reset(pacer)
        assert pacer.wait() < 0.01  # free, or the comparison means nothing
        baseline = _median_seconds(client.ping, rounds, calls)
        measured = _median_seconds(pacer.wait, rounds, calls)
        pacers.reset(pacer)
    print(f"  baseline: one Redis round trip (PING)        1.00   ({baseline * 1e6:.0f} us)")
    print(f"  wait() on Redis (one EVALSHA):               {measured / baseline:.2f}x baseline")
    with override_settings(WORKERS_PACER_REDIS_URL="", CELERY_BROKER_URL="filesystem://"):
        pacers.reset(pacer)
        database = _median_seconds(pacer.wait, rounds, max(1, calls // 10))
    print(f"  wait() on the database (one locked update):  {database / baseline:.2f}x baseline")
