"""A sync of 100,000 records in pages of 1,000 against a raw INSERT ... ON CONFLICT of the same rows.

The sync runs through the real engine (`execute_sync`, in this process, as `workers sync run
--local` does): the code's pages are checked, written, and committed page by page with the sync's
state and the run's progress. The baseline writes the same rows, built from the same pages, into
a plain table of the records' shape: one multi-row upsert and one commit per page, nothing else.

Rows written are counted from the database: on PostgreSQL `pg_stat_user_tables` (n_tup_ins +
n_tup_upd; the writing backend's pending counts are flushed first), on SQLite the connection's
`total_changes` (every table: SQLite keeps no per-table count). Memory is the process's resident
size after each page.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.test.utils import override_settings

from connections.runtime import settled_heap
from connections.sdk import Worker, builder, schema

from .report import Context

PAGE = 1000
REPEATS = 3  # each timed run, at full size; the best counts (see measure)
PLAIN = "bench_plain_record"

worker = Worker("bench-sync")
_PROPERTIES = {
    "Title": schema.title(),
    "Item ID": schema.rich_text(),
    "Status": schema.select(),
    "Score": schema.number(),
    "Notes": schema.rich_text(),
}
items = worker.database("benchItems", title="Bench items", primary_key="Item ID", properties=_PROPERTIES)
snapshot = worker.database("benchSnapshot", title="Bench snapshot", primary_key="Item ID", properties=_PROPERTIES)

# What the pages return: `total` records, every fifth one with status "changed" when `changed` is set.
SOURCE: dict[str, Any] = {"total": 0, "changed": False}


def source_page(state: dict[str, Any] | None) -> dict[str, Any]:
    start = (state or {}).get("next", 0)
    stop = min(start + PAGE, SOURCE["total"])
    changes = []
    for i in range(start, stop):
        status = "changed" if SOURCE["changed"] and i % 5 == 0 else ("open", "done", "waiting")[i % 3]
        changes.append(
            {
                "type": "upsert",
                "key": f"item-{i:07d}",
                "properties": {
                    "Title": builder.title(f"Item number {i}"),
                    "Item ID": builder.rich_text(str(i)),
                    "Status": builder.select(status),
                    "Score": builder.number(i % 997),
                    "Notes": builder.rich_text(f"Some notes about item {i}, long enough to look like real text."),
                },
            }
        )
    more = stop < SOURCE["total"]
    return {"changes": changes, "has_more": more, "next_state": {"next": stop} if more else None}


@worker.sync("benchSync", database=items, schedule="manual")
def bench_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    return source_page(state)


@worker.sync("benchSnapshotSync", database=snapshot, schedule="manual", mode="replace")
def bench_snapshot_sync(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    return source_page(state)


class Memory:
    """Resident size after each page of one run, read from a file kept open: the sampling is timed with the sync."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.statm = os.open("/proc/self/statm", os.O_RDONLY)

    def __call__(self, run: Any) -> None:
        pages = int(os.pread(self.statm, 200, 0).split()[1])
        self.samples.append(pages * 4096 / 2**20)

    def close(self) -> None:
        os.close(self.statm)

    def text(self) -> str:
        s = self.samples
        return f"RSS after page 1 {s[0]:.0f} MB, page {len(s) // 2} {s[len(s) // 2 - 1]:.0f} MB, last {s[-1]:.0f} MB"


# --- the baseline: a plain table of the records' shape, written with raw upserts ------------------


def _create_plain() -> None:
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PLAIN}")
        cursor.execute(
            f"CREATE TABLE {PLAIN} ("
            f"id {'bigserial' if postgres else 'integer'} PRIMARY KEY, database_id integer NOT NULL, "
            f"key varchar(500) NOT NULL, properties {'jsonb' if postgres else 'text'} NOT NULL, "
            f"search_text text NOT NULL, cycle integer NOT NULL, "
            f"created_at {'timestamptz' if postgres else 'datetime'} NOT NULL, "
            f"updated_at {'timestamptz' if postgres else 'datetime'} NOT NULL, UNIQUE (database_id, key))"
        )


def raw_upsert_all(*, fresh: bool = False) -> float:
    """Seconds to upsert every page of the source into the plain table, one statement and commit a page.

    `fresh` empties the table first (outside the time), so that every row is new, as in a first run.
    """
    from connections.runner.syncs import search_text

    if fresh:
        with connection.cursor() as cursor:
            cursor.execute(f"{'TRUNCATE' if connection.vendor == 'postgresql' else 'DELETE FROM'} {PLAIN}")
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    started = time.perf_counter()
    state = None
    while True:
        page = source_page(state)
        now = connection.ops.adapt_datetimefield_value(_now())
        params: list[Any] = []
        for change in page["changes"]:
            props = change["properties"]
            params += [1, change["key"], json.dumps(props), search_text(props), 1, now, now]
        values = ", ".join([f"(%s, %s, %s{cast}, %s, %s, %s, %s)"] * len(page["changes"]))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {PLAIN} (database_id, key, properties, search_text, cycle, created_at, updated_at) "  # noqa: S608
                f"VALUES {values} ON CONFLICT (database_id, key) DO UPDATE SET properties = excluded.properties, "
                "search_text = excluded.search_text, cycle = excluded.cycle, updated_at = excluded.updated_at",
                params,
            )
        if not page["has_more"]:
            return time.perf_counter() - started
        state = page["next_state"]


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


# --- rows written ---------------------------------------------------------------------------------


def _pg_writes() -> dict[str, int]:
    """n_tup_ins + n_tup_upd per table, once this backend's pending counts are in the shared stats."""
    with connection.cursor() as cursor:
        # Pending counts are flushed when the backend goes idle, at most once a second unless forced.
        cursor.execute("SELECT pg_stat_force_next_flush()")
    last: dict[str, int] | None = None
    for _ in range(20):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT relname, n_tup_ins + n_tup_upd FROM pg_stat_user_tables")
            now = dict(cursor.fetchall())
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last or {}


class Writes:
    """Rows written during a block: records and everything (PostgreSQL), or everything (SQLite)."""

    def __enter__(self) -> Writes:
        connection.ensure_connection()
        self.before = _pg_writes() if connection.vendor == "postgresql" else connection.connection.total_changes
        return self

    def __exit__(self, *exc: object) -> None:
        if connection.vendor == "postgresql":
            after = _pg_writes()
            delta = {name: after.get(name, 0) - self.before.get(name, 0) for name in after}
            self.records: int | None = delta.get("connections_record", 0)
            self.total = sum(delta.values())
            self.others = {name: n for name, n in delta.items() if n and name != "connections_record"}
        else:
            connection.ensure_connection()
            self.records = None
            self.total = connection.connection.total_changes - self.before
            self.others = {}

    def text(self) -> str:
        if self.records is None:
            return f"{self.total:,} rows written in all tables (SQLite total_changes)"
        others = ", ".join(f"{name} {n}" for name, n in sorted(self.others.items()))
        return f"{self.records:,} record rows written; bookkeeping: {others or 'none'}"


# --- the sync, through the engine -----------------------------------------------------------------


def run_sync(key: str) -> tuple[float, Memory, Writes, dict[str, Any]]:
    from connections.models import Sync
    from connections.runner.syncs import execute_sync, start_sync

    sync = Sync.objects.select_related("worker").get(worker__slug="bench-sync", key=key)
    memory = Memory()
    with Writes() as writes:
        run = start_sync(sync, trigger="bench", send=False)
        started = time.perf_counter()
        outcome = execute_sync(run.pk, local=True, on_progress=memory)
        seconds = time.perf_counter() - started
    memory.close()
    run = outcome.run
    if run.status != "succeeded":
        raise RuntimeError(f"the bench sync failed: {run.error}")
    return seconds, memory, writes, run.progress


def _timed_first(forget: Callable[[], None], key: str) -> float:
    forget()
    return run_sync(key)[0]


def _counts(progress: dict[str, Any]) -> str:
    return (
        f"{progress['created']:,} new, {progress['updated']:,} changed, {progress['unchanged']:,} unchanged, "
        f"{progress['deleted']:,} deleted"
    )


def measure(
    ctx: Context,
    name: str,
    key: str,
    *,
    baseline: str,
    target: float,
    against: float | None = None,
    fresh: bool = False,
    before_each: Callable[[], None] | None = None,
) -> float:
    """Run the sync `key` REPEATS times, report its best time as the figure `name`, and return it (seconds).

    Against `against` (the best seconds of an earlier figure) when given; else against the best of
    the raw upserts of the same rows run before each sync and after the last, interleaved with them:
    the machine is shared, its speed drifts by 10-20% from one run to the next, and the work is the
    same each time, so the best of each side is what each costs. `fresh` empties the plain table
    before each raw upsert, so that its rows are all new, as in a first run; `before_each` puts the
    records back as the figure needs them before each sync (untimed).
    """
    total = SOURCE["total"]
    raws: list[float] = []
    runs: list[tuple[float, Memory, Writes, dict[str, Any]]] = []
    for _ in range(ctx.scale(REPEATS, 1)):
        if against is None:
            raws.append(raw_upsert_all(fresh=fresh))
        if before_each is not None:
            before_each()
        runs.append(run_sync(key))
    if against is None:
        raws.append(raw_upsert_all(fresh=fresh))
    base = min(raws) if against is None else against
    seconds, memory, writes, progress = min(runs, key=lambda found: found[0])
    ctx.figure(
        name,
        ratio=seconds / base,
        baseline=baseline,
        target=target,
        detail=f"{total / seconds:,.0f} rec/s vs {total / base:,.0f} (best of {len(runs)}: sync "
        f"{', '.join(f'{r[0]:.2f}' for r in runs)} s"
        + (f"; raw {', '.join(f'{r:.2f}' for r in raws)} s" if raws else "")
        + f"); {_counts(progress)}; {writes.text()}; {memory.text()}",
        records_written=writes.records,
        rows_written=writes.total,
    )
    return seconds


def _forget(database: str) -> Callable[[], None]:
    """Delete the database's records, so that the next run of its sync is a first run again."""

    def forget() -> None:
        from connections.models import Record

        Record.objects.filter(database__key=database).delete()

    return forget


def _unchange(key: str) -> Callable[[], None]:
    """Put every record back as the unchanged source has it, so that the next run finds 20% changed."""

    def unchange() -> None:
        SOURCE["changed"] = False
        run_sync(key)
        SOURCE["changed"] = True

    return unchange


def run(ctx: Context) -> None:
    from connections import registry
    from connections.deploy import deploy

    total = ctx.scale(100_000, 5_000)
    SOURCE.update(total=total, changed=False)
    with override_settings(WORKER_MODULES=["benchmarks.sync_upsert"], WORKERS_SYNC_MAX_PAGES=total // PAGE + 1):
        registry.clear_cache()
        deploy()
        _create_plain()
        # As `workers sync run --local` runs it (and a Celery pool process, frozen for good), the baseline alike.
        with settled_heap():
            n = f"{total:,} records in pages of {PAGE:,}"
            raw = "raw INSERT ... ON CONFLICT of the same rows (best of the runs interleaved with the sync's)"

            first = measure(
                ctx,
                f"sync first run, {n}",
                "benchSync",
                baseline=raw,
                target=1.3,
                fresh=True,
                before_each=_forget("benchItems"),
            )
            measure(
                ctx,
                f"sync rerun, 20% of {n} changed",
                "benchSync",
                baseline=raw,
                target=1.5,
                before_each=_unchange("benchSync"),
            )
            measure(
                ctx,
                f"sync rerun, nothing changed, {n}",
                "benchSync",
                baseline="the sync's first run",
                target=0.5,
                against=first,
            )
            # Replace mode also deletes, at the cycle's end, what the cycle did not mention.
            forget = _forget("benchSnapshot")
            snapshot_first = min(_timed_first(forget, "benchSnapshotSync") for _ in range(ctx.scale(REPEATS, 1)))
            measure(
                ctx,
                f"replace-mode sync rerun, nothing changed, {n}",
                "benchSnapshotSync",
                baseline="the same sync's first run",
                target=0.5,
                against=snapshot_first,
            )
    registry.clear_cache()
