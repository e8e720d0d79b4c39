"""Start-up (`check --database default`, a Celery worker's readiness) with many stored encrypted
values, against the same start-up on the empty migrated database: the key check must not grow
with what is stored."""

from __future__ import annotations

import os
import resource
import sqlite3
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


def _check(timing: Timing, database_url: str) -> None:
    """One `manage.py check --database default` in a new process, as a deploy or a container start runs it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        check=False,
    )
    timing.add(time.perf_counter() - started, before)
    if done.returncode:
        raise RuntimeError(f"check failed: {done.stderr.strip()[-500:]}")


def _worker_ready(timing: Timing, database_url: str) -> None:
    """From `celery worker` started to its "ready." line (the key check runs in worker_init before it);
    its CPU time runs on to its exit, which an idle worker reaches in a few milliseconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    ready = None
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers_site", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=database_url, PYTHONUNBUFFERED="1"),
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


def _alternate(
    func: Callable[[Timing, str], None], empty_url: str, full_url: str, rounds: int
) -> tuple[Timing, Timing]:
    """Start-ups on the empty and the full database in turn, so both see the same load of the machine."""
    empty, full = Timing(), Timing()
    for _ in range(rounds):
        func(empty, empty_url)
        func(full, full_url)
    return empty, full


def _snapshot_empty(url: str) -> tuple[str, Callable[[], None]]:
    """A copy of the migrated, still empty database: the baseline's database. Returns its URL and a cleanup."""
    if connection.vendor == "sqlite":
        source = Path(connection.settings_dict["NAME"])
        target = source.with_name("empty.sqlite3")
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"sqlite:///{target}", lambda: target.unlink(missing_ok=True)
    import psycopg

    base, _, name = url.rpartition("/")
    copy = f"{name}_empty"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')

    def drop() -> None:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')

    return f"{base}/{copy}", drop


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
    full_url = os.environ["DATABASE_URL"]
    connection.close()  # the child processes open their own

    _check(Timing(), full_url)  # the first check writes the key canary, which the copy then holds too
    empty_url, drop_empty = _snapshot_empty(full_url)
    try:
        started = time.perf_counter()
        _store_secrets(count)
        filled_in = time.perf_counter() - started
        connection.close()
        ctx.note(f"stored {count:,} encrypted values in {filled_in:.1f} s")

        _check(Timing(), full_url)  # warm the file cache of the full database too
        empty_check, full_check = _alternate(_check, empty_url, full_url, rounds)
        empty_worker, full_worker = _alternate(_worker_ready, empty_url, full_url, worker_rounds)
    finally:
        drop_empty()
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
