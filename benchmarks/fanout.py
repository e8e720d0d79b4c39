"""Trivial tool runs through a real Celery worker (-c 2) on Redis + PostgreSQL against bare Celery tasks.

Baseline: N bare `@shared_task`s (one Redis write each) sent with `delay()` and waited for end to
end. Measured: N `start_tool` runs of a no-op tool, sent and waited for until every one finished.
Both are sent through the transport the settings pick for a redis:// broker.
Rounds alternate between the two, so the machine's load hits both alike; medians are compared.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .report import Context

MODULE = "benchmarks.fanout_worker"
ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
REDIS_TRANSPORT = "connections.broker:RedisTransport"  # what workers_site/settings.py picks for redis://


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "BENCH_REDIS_URL": REDIS_URL,
        "WORKER_MODULES": MODULE,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "workers_site", "worker", "--concurrency", "2"]
    command += ["--pool", "prefork", "--loglevel", "INFO", "-I", MODULE, "-n", f"bench-fanout-{os.getpid()}@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    handle = log.open("w")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "ready." in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the Celery worker did not start:\n{log.read_text(errors='replace')[-3000:]}")


def _wait(done: Callable[[], int], count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while done() < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done()} of {count} finished in {timeout:.0f} s")
        time.sleep(0.005)


def _bare_round(redis_client: object, n: int) -> tuple[float, float]:
    """(seconds to queue, seconds end to end) for n bare tasks."""
    from .fanout_worker import COUNTER, bare

    redis_client.delete(COUNTER)
    start = time.perf_counter()
    for i in range(n):
        bare.delay(i)
    queued = time.perf_counter() - start
    _wait(lambda: int(redis_client.get(COUNTER) or 0), n)
    return queued, time.perf_counter() - start


def _run_round(n: int) -> tuple[float, float]:
    """(seconds to queue, seconds end to end) for n tool runs."""
    from connections.models import Run
    from connections.runner.tools import start_tool

    first = Run.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    start = time.perf_counter()
    for i in range(n):
        last = start_tool("bench-fanout", "noop", {"n": i}, trigger="api")
    queued = time.perf_counter() - start
    finished = Run.objects.filter(pk__gt=first, status__in=Run.FINISHED)
    last_finished = Run.objects.filter(pk=last.pk, status__in=Run.FINISHED)

    def done() -> int:
        # Counted once the last run is done: a count of the round's runs every 5 ms cost the
        # database a third of a millisecond per run, where the bare side's wait is a Redis GET.
        return finished.count() if last_finished.exists() else 0

    _wait(done, n)
    elapsed = time.perf_counter() - start
    failed = Run.objects.filter(pk__gt=first).exclude(status=Run.Status.SUCCEEDED).count()
    if failed:
        raise RuntimeError(f"{failed} of {n} runs did not succeed")
    return queued, elapsed


def _statements_per_run() -> tuple[int, list[str]]:
    """The SQL statements one run executes on the worker, counted in process around execute_tool."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from connections.runner.tools import execute_tool, start_tool

    run = start_tool("bench-fanout", "noop", {"n": 1}, trigger="api", send=False)
    with CaptureQueriesContext(connection) as queries:
        execute_tool(run.pk)
    return len(queries), [q["sql"][:60] for q in queries.captured_queries]


def _sessions() -> int:
    """Connections ever opened to this database (PostgreSQL 14+ counts them in pg_stat_database)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _wal_position() -> int:
    """Bytes of write-ahead log PostgreSQL has written so far: what every row and index entry costs it.

    The server's, not this database's alone: autovacuum and pages written whole after a checkpoint
    count too, so the figure per run is approximate.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def run(ctx: Context) -> None:
    import redis
    from celery import current_app
    from django.test.utils import override_settings

    from connections import registry
    from connections.deploy import deploy

    n, rounds = ctx.scale(1000, 50), ctx.scale(3, 3)
    current_app.conf.broker_url = REDIS_URL
    # The settings were read for the embedded broker (filesystem://), whose transport class and
    # options would otherwise still apply to the Redis URL: messages went nowhere a worker looked.
    # Both sides are sent as the settings send them to a redis:// broker.
    current_app.conf.broker_transport, current_app.conf.broker_transport_options = REDIS_TRANSPORT, {}
    os.environ["WORKER_MODULES"] = MODULE
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()  # this benchmark's own database number: no message left by an earlier run
    log = Path(tempfile.mkdtemp(prefix="workers-bench-fanout-")) / "worker.log"
    with override_settings(WORKER_MODULES=[MODULE]):
        registry.clear_cache()
        deploy()
        statements, sql = _statements_per_run()
        worker = _start_worker(log)
        try:
            _bare_round(client, min(n, 20))  # warm both paths: pool processes, imports, connections
            _run_round(min(n, 20))
            bare, runs = [], []
            time.sleep(2)  # the pool's backends report their sessions at most once a second
            sessions = _sessions()
            wal = _wal_position()
            for _ in range(rounds):
                bare.append(_bare_round(client, n))
                runs.append(_run_round(n))
            wal = (_wal_position() - wal) / (rounds * n)  # the bare rounds write none
            time.sleep(2)
            opened = (_sessions() - sessions) / (rounds * n)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    bare_total = statistics.median(b[1] for b in bare)
    run_total = statistics.median(r[1] for r in runs)
    bare_queue = statistics.median(b[0] for b in bare) / n
    run_queue = statistics.median(r[0] for r in runs) / n
    ctx.figure(
        f"{n} trivial tool runs through Celery (-c 2, Redis, PostgreSQL), end to end",
        ratio=run_total / bare_total,
        baseline=f"{n} bare Celery tasks doing one Redis write ({n / bare_total:.0f}/s)",
        target=2,
        detail=(
            f"{n / run_total:.0f} runs/s, +{(run_total - bare_total) / n * 1000:.1f} ms a run; median of {rounds} "
            f"rounds; about {wal:.0f} bytes of PostgreSQL WAL a run"
        ),
    )
    ctx.figure(
        "queueing one run (start_tool)",
        ratio=run_queue / bare_queue,
        baseline=f"task.delay ({bare_queue * 1000:.2f} ms)",
        target=2,
        detail=f"{run_queue * 1000:.2f} ms a run",
    )
    ctx.figure(
        "SQL statements per run on the worker",
        ratio=statements / 2,
        baseline="what correctness needs: claim, finish (2)",
        detail=f"{'; '.join(sql)}; {opened:.2f} new PostgreSQL connections a run",
    )
