"""Start-up (`check --database default`, a Celery worker's readiness) with many stored encrypted
values, against the same start-up on the empty migrated database: the key check must not grow
with what is stored."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone
from encrypted_model_fields import fields as emf

from .report import Context

ROOT = Path(__file__).resolve().parent.parent
BATCH = 10_000
WORKER_READY_TIMEOUT = 300.0


class Timing:
    """Wall-clock and CPU seconds (user + system) of a child process.

    The figures use CPU seconds: the cost that grew with stored values was decryption in the
    process itself, and on a shared 2-core machine the wall clock of one start-up varies several
    times over with the other processes' load.
    """

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, wall: float, before: resource.struct_rusage) -> None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall.append(wall)
        self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    def median_wall(self) -> float:
        return statistics.median(self.wall)


def _check(timing: Timing) -> None:
    """One `manage.py check --database default` in a new process, as a deploy or a container start runs it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    timing.add(time.perf_counter() - started, before)
    if done.returncode:
        raise RuntimeError(f"check failed: {done.stderr.strip()[-500:]}")


def _worker_ready(timing: Timing) -> None:
    """From `celery worker` started to its "ready." line (the key check runs in worker_init before it);
    its CPU time runs on to its exit, which an idle worker reaches in a few milliseconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    ready = None
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers_site", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if " ready." in line:
                ready = time.perf_counter() - started
                break
            if time.perf_counter() - started > WORKER_READY_TIMEOUT:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if ready is None:
        raise RuntimeError("the Celery worker did not become ready")
    timing.add(ready, before)


def _measure(func: Callable[[Timing], None], rounds: int) -> Timing:
    timing = Timing()
    for _ in range(rounds):
        func(timing)
    return timing


def _store_secrets(count: int) -> None:
    """`count` secrets of real ciphertext under the current key, inserted raw in batches (bounded memory;
    the ORM would also remember every value for log redaction, which a bench process does not need)."""
    from connections.models import Secret, Worker

    worker, _ = Worker.objects.get_or_create(slug="bench-startup", defaults={"module": "bench"})
    qn = connection.ops.quote_name
    table = qn(Secret._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({qn('worker_id')}, {qn('name')}, {qn('value')}, {qn('created_at')}, "  # noqa: S608
        f"{qn('updated_at')}) VALUES (%s, %s, %s, %s, %s)"
    )
    now = timezone.now()
    for start in range(0, count, BATCH):
        rows = [
            (worker.pk, f"SECRET_{i}", emf.encrypt_str(f"value-{i:08d}-of-a-typical-token").decode(), now, now)
            for i in range(start, min(start + BATCH, count))
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")


def run(ctx: Context) -> None:
    count = ctx.scale(500_000, 5_000)
    rounds = ctx.scale(5, 2)
    worker_rounds = ctx.scale(3, 1)
    connection.close()  # the child processes open their own

    _check(Timing())  # warm the file cache; the first check also writes the key canary
    empty_check = _measure(_check, rounds)
    empty_worker = _measure(_worker_ready, worker_rounds)

    started = time.perf_counter()
    _store_secrets(count)
    filled_in = time.perf_counter() - started
    connection.close()
    ctx.note(f"stored {count:,} encrypted values in {filled_in:.1f} s")

    full_check = _measure(_check, rounds)
    full_worker = _measure(_worker_ready, worker_rounds)
    for what, full, empty in (
        ("`check --database default`", full_check, empty_check),
        ("a Celery worker ready", full_worker, empty_worker),
    ):
        ctx.figure(
            f"{what} at {count:,} stored encrypted values (CPU seconds)",
            ratio=full.median_cpu() / empty.median_cpu(),
            baseline=f"the same on the empty database ({empty.median_cpu():.2f} s)",
            target=1.5,
            detail=(
                f"CPU {full.median_cpu():.2f} s vs {empty.median_cpu():.2f} s, wall {full.median_wall():.2f} s "
                f"vs {empty.median_wall():.2f} s (median of {len(full.cpu)}); target: independent of stored values"
            ),
            cpu_seconds=full.median_cpu(),
            baseline_cpu_seconds=empty.median_cpu(),
            wall_seconds=full.median_wall(),
            baseline_wall_seconds=empty.median_wall(),
            values=count,
        )
