"""The sync engine: pages of changes applied to a database, each page committed with its next state.

A page's upserts and deletes, the sync's new `state` and its page count are written in one
transaction. A worker killed between two pages therefore leaves the database and the state in
step: the next run calls the code with the state of the last committed page, so the cycle goes on
at the next page and no record is lost or written twice.

One run of a sync at a time: the lock is `Sync.running_run`, taken and released under the sync's
row lock (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every transaction here begins IMMEDIATE,
which takes the database's write lock). A holder whose process is gone is taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from .. import jsondata, metrics, registry
from ..conf import app_settings
from ..exceptions import InvalidSyncResult, WorkerNotFound
from ..models import Record, Run, Sync, SyncSeenKeys
from ..sdk.worker import SyncDef
from ..text import natural_sort_key
from . import limits, runs
from .execute import Skipped, perform

logger = logging.getLogger("connections.runner")

ProgressCallback = Callable[[Run], None]
_RECENT_PAGES = 50
_METRICS_EVERY = 1.0  # seconds


class LostLock(Exception):
    """Another run took this sync over (this process was thought dead); stop without writing."""


@dataclass
class Page:
    upserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    has_more: bool = False
    next_state: Any = None
    # Key -> the upsert's canonical JSON and digest, made once by parse_page (apply_page makes any missing).
    prepared: dict[str, tuple[str, str]] = field(default_factory=dict)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict):
        return " ".join(_text_of(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return " ".join(_text_of(v) for v in value)
    return str(value)


def search_text(properties: dict[str, Any]) -> str:
    parts = []
    for prop in properties.values():
        value = prop.get("value") if isinstance(prop, dict) else prop
        # Most values are text: no call for them (this runs for every property of every record written).
        text = value if isinstance(value, str) else _text_of(value)
        if text:
            parts.append(text)
    return " ".join(parts)


def _digest_of(canonical: str) -> str:
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def content_digest(properties: dict[str, Any]) -> str:
    """A record's properties as a short hash: equal for equal JSON, whatever the order of its keys."""
    return _digest_of(jsondata.canonical_text(properties))


def _prepare(properties: dict[str, Any]) -> tuple[str, str]:
    canonical = jsondata.canonical_text(properties)
    return canonical, _digest_of(canonical)


class _Unsure(Exception):
    """The fast check of a page does not vouch for it: the page is checked and cleaned whole."""


# Where a record's properties sit in a page: page {changes: [{properties: ...}]}, as jsondata counts.
_PROPERTIES_DEPTH = 3
_CHANGE_FIELDS = frozenset(("type", "key", "properties"))


def _extra_fields(change: dict[Any, Any]) -> dict[Any, Any]:
    return {name: value for name, value in change.items() if name not in _CHANGE_FIELDS}


def _property_error(sync: SyncDef, where: str, name: Any, value: Any) -> InvalidSyncResult:
    declared = sync.database.properties
    if name not in declared:
        return InvalidSyncResult(
            f"{where}: property {name!r} is not declared by database {sync.database.key} ({', '.join(declared)})."
        )
    kind = value.get("type") if isinstance(value, dict) else None
    expected = declared[name]["type"]
    return InvalidSyncResult(
        f"{where}: property {name!r} is a {expected}, got {kind or type(value).__name__} (use builder.{expected}(...))."
    )


def parse_page(sync: SyncDef, result: Any, page_number: int) -> Page:
    """Check one page as returned by the code; the message names the change that is wrong.

    Too deep fails the run with a message; text that is not valid Unicode (keys, properties,
    next_state) becomes U+FFFD: stored as it is, it breaks the database write, pages and dumps.
    Nearly every page is fine, and each record's canonical JSON (needed for its digest and its
    storage) shows it is: that check alone, one serialisation per record, passes such a page. Any
    doubt, and any refusal, goes the slow way: the whole page cleaned first, then parsed, so the
    outcome (cleaned text, messages) is the same either way.
    """
    where = f"Sync {sync.key}, page {page_number}"
    limit = app_settings.JSON_MAX_DEPTH
    try:
        return _parse(sync, result, where, limit, fast=True)
    except (_Unsure, InvalidSyncResult):
        pass
    return _parse(sync, jsondata.clean(result, what=where, max_depth=limit), where, limit, fast=False)


def _parse(sync: SyncDef, result: Any, where: str, limit: int, *, fast: bool) -> Page:
    """Parse a page; `fast` raises _Unsure unless the page is plainly within `limit` and clean."""
    if not isinstance(result, dict):
        raise InvalidSyncResult(f"{where}: expected a dict with changes, has_more and next_state.")
    if fast and (
        limit <= _PROPERTIES_DEPTH
        or not jsondata.is_plain({name: value for name, value in result.items() if name != "changes"}, limit)
    ):
        raise _Unsure
    changes = result.get("changes", [])
    if not isinstance(changes, list):
        raise InvalidSyncResult(f"{where}: changes must be a list.")
    has_more = result.get("has_more", result.get("hasMore", False))
    if not isinstance(has_more, bool):
        raise InvalidSyncResult(f"{where}: has_more must be true or false.")
    types = {name: spec["type"] for name, spec in sync.database.properties.items()}
    page = Page(has_more=has_more, next_state=result.get("next_state", result.get("nextState")))
    upserts, prepared = page.upserts, page.prepared
    # Keys deleted so far, in order; a dict, so that a later upsert of the same key takes it out at once.
    deletes: dict[str, None] = {}
    for index, change in enumerate(changes, 1):
        if not isinstance(change, dict) or change.get("type") not in ("upsert", "delete"):
            raise InvalidSyncResult(f"{where}, change {index}: type must be 'upsert' or 'delete'.")
        key = change.get("key")
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str) or not key or len(key) > 500:
            raise InvalidSyncResult(f"{where}, change {index}: key must be a non-empty string of at most 500.")
        if fast and (
            jsondata.text_is_bad(key)
            # The change is two levels down (page, changes); what the engine does not read is checked too.
            or not (_CHANGE_FIELDS.issuperset(change) or jsondata.is_plain(_extra_fields(change), limit - 2))
        ):
            raise _Unsure
        if change["type"] == "delete":
            upserts.pop(key, None)
            prepared.pop(key, None)
            deletes[key] = None
            continue
        properties = change.get("properties")
        if not isinstance(properties, dict):
            raise InvalidSyncResult(f"{where}, change {index} (key {key}): properties must be a dict.")
        for name, value in properties.items():
            kind = types.get(name)
            if kind is None or not isinstance(value, dict) or value.get("type") != kind:
                raise _property_error(sync, f"{where}, change {index} (key {key})", name, value)
        if fast:
            try:
                made = jsondata.canonical(properties, max_depth=limit - _PROPERTIES_DEPTH)
            except (TypeError, ValueError):
                made = None  # not JSON: the slow way raises the same, after the checks it makes first
            if made is None:
                raise _Unsure
            canonical, encoded = made
            prepared[key] = (canonical, hashlib.blake2b(encoded, digest_size=16).hexdigest())
        else:
            prepared[key] = _prepare(properties)
        if deletes:
            deletes.pop(key, None)
        upserts[key] = properties
    page.deletes = list(deletes)
    return page


_WRITTEN = (
    "database_id",
    "key",
    "sort_key",
    "properties",
    "search_text",
    "digest",
    "cycle",
    "created_at",
    "updated_at",
)
_REWRITTEN = ("properties", "search_text", "digest", "cycle", "updated_at")


def _rows_per_statement() -> int:
    if connection.vendor == "sqlite":
        # SQLite's real limit on parameters (32766 since 3.32), not Django's conservative 999.
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return max(1, min(1000, limit // len(_WRITTEN)))
    return 1000


def _mark() -> str:
    """The placeholder of a page's long statements: `?` on SQLite, else `%s`.

    `%s` too while Django logs queries (DEBUG, or a test capturing them: the only mark its log can
    substitute values into) or has execute wrappers installed (they see every statement); the
    statements are otherwise the same.
    """
    plain = connection.vendor == "sqlite" and not (connection.queries_logged or connection.execute_wrappers)
    return "?" if plain else "%s"


def _execute_long(cursor: Any, sql: str, params: list[Any]) -> None:
    """Run one of a page's long statements, written with `_mark()`, on a cursor of `connection`.

    With `?` straight through sqlite3's own cursor, errors wrapped as Django's cursor wraps them:
    Django's SQLite cursor runs a regular expression over the statement to rewrite `%s` as `?`,
    which for a page's 9,000 of them was 7% of a first run (and still 1.5% with none to rewrite).
    Tools that patch Django's cursor instead of using execute wrappers (APM agents) do not see them.
    """
    if _mark() == "%s":
        cursor.execute(sql, params)
        return
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        sqlite3.Cursor.execute(cursor.cursor, sql, params)


def _json_parameter(value: list[Any]) -> str:
    """A page's rows or keys as one JSON parameter (text only, already checked): orjson, or `json` if it refuses."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def _upsert(rows: list[tuple[Any, ...]]) -> None:
    """INSERT ... ON CONFLICT (database, key) DO UPDATE of whole records (rows in `_WRITTEN` order).

    The statement `bulk_create(update_conflicts=True)` builds, without preparing each value through
    its model field one by one, which took most of a page's time. On PostgreSQL the rows travel as
    one JSON parameter: psycopg parses a query's placeholders in Python, which for 1,000 rows of
    nine placeholders cost more than the database's work.
    """
    quote = connection.ops.quote_name
    into = f"INSERT INTO {quote(Record._meta.db_table)} ({', '.join(quote(c) for c in _WRITTEN)}) "
    tail = f" ON CONFLICT ({quote('database_id')}, {quote('key')}) DO UPDATE SET " + ", ".join(
        f"{quote(c)} = excluded.{quote(c)}" for c in _REWRITTEN
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The values every row shares once; per row its key, sort key, properties, search text and digest.
            database_id, cycle, now = rows[0][0], rows[0][6], rows[0][7]
            varying = _json_parameter([row[1:6] for row in rows])
            cursor.execute(
                into  # noqa: S608 (names only)
                + "SELECT %s::bigint, r->>0, r->>1, (r->>2)::jsonb, r->>3, r->>4, %s::integer, "
                "%s::timestamptz, %s::timestamptz FROM json_array_elements(%s::json) AS r" + tail,
                [database_id, cycle, now, now, varying],
            )
            return
        one = "(" + ", ".join([_mark()] * len(_WRITTEN)) + ")"
        size = _rows_per_statement()
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            _execute_long(
                cursor, into + "VALUES " + ", ".join([one] * len(chunk)) + tail, list(chain.from_iterable(chunk))
            )


def _stored_digests(database_id: int, keys: list[str]) -> dict[str, str]:
    """Key -> digest of the database's records among `keys`: one indexed read (a few on SQLite)."""
    if not keys:
        return {}
    quote = connection.ops.quote_name
    head = f"SELECT {quote('key')}, {quote('digest')} FROM {quote(Record._meta.db_table)} WHERE {quote('database_id')} = {_mark()} AND {quote('key')}"  # noqa: S608 (names only)
    found: dict[str, str] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One JSON parameter, as in _upsert (psycopg dumps a list parameter element by element in
            # Python), made an array once so the lookup stays an index scan (IN (SELECT ...) hash-joins
            # against every record of the database).
            cursor.execute(
                head + " = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))", [database_id, _json_parameter(keys)]
            )
            found.update(cursor.fetchall())
        else:
            size = _rows_per_statement() * len(_WRITTEN) - 1
            for start in range(0, len(keys), size):
                chunk = keys[start : start + size]
                _execute_long(cursor, f"{head} IN ({', '.join([_mark()] * len(chunk))})", [database_id, *chunk])
                found.update(cursor.fetchall())
    return found


def apply_page(sync: Sync, page: Page, page_number: int) -> dict[str, int]:
    """Write one page of `sync`'s current cycle; call inside the page's transaction.

    Only new and changed records are written, in one INSERT ... ON CONFLICT DO UPDATE: a record
    whose digest is unchanged is not touched (its updated_at stays, and a rerun with no change
    writes no record). A replace-mode page lists its unchanged keys in one SyncSeenKeys row, so
    the cycle's end knows they were seen without rewriting them.
    """
    database_id = sync.database_id
    stored = _stored_digests(database_id, list(page.upserts))
    # The canonical text the digest is made of is what is stored, on SQLite too: a second
    # serialisation in the code's key order cost a seventh of a page there, and jsonb keeps no key
    # order anyway. The admin shows properties in the database's declared order.
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows, unchanged, created = [], [], 0
    prepared = page.prepared
    for key, properties in page.upserts.items():
        canonical, digest = prepared.get(key) or _prepare(properties)
        before = stored.get(key)
        if before == digest:
            unchanged.append(key)
            continue
        created += before is None
        rows.append(
            (database_id, key, natural_sort_key(key), canonical, search_text(properties), digest, sync.cycle, now, now)
        )
    if rows:
        _upsert(rows)
    if unchanged and sync.mode == Sync.Mode.REPLACE:
        SyncSeenKeys.objects.create(sync=sync, cycle=sync.cycle, page=page_number, keys=unchanged)
    deleted = 0
    if page.deletes:
        deleted, _ = Record.objects.filter(database_id=database_id, key__in=page.deletes).delete()
    return {"created": created, "updated": len(rows) - created, "unchanged": len(unchanged), "deleted": deleted}


# Records of the database that this cycle neither wrote (cycle) nor saw unchanged (SyncSeenKeys).
# An anti-join on PostgreSQL; SQLite builds the NOT IN list's index once.
_DELETE_UNSEEN = {
    "postgresql": (
        "DELETE FROM {records} AS r WHERE r.database_id = %s AND r.cycle <> %s AND NOT EXISTS ("
        "SELECT 1 FROM {seen} AS s CROSS JOIN LATERAL jsonb_array_elements_text(s.keys) AS k(key) "
        "WHERE s.sync_id = %s AND s.cycle = %s AND k.key = r.key)"
    ),
    "sqlite": (
        "DELETE FROM {records} WHERE database_id = %s AND cycle <> %s AND key NOT IN ("
        "SELECT j.value FROM {seen} AS s, json_each(s.keys) AS j WHERE s.sync_id = %s AND s.cycle = %s)"
    ),
}


def delete_unseen(sync: Sync) -> int:
    """End of a replace-mode cycle: delete what it did not mention; the number deleted."""
    template = _DELETE_UNSEEN.get(connection.vendor)
    if template is None:
        raise NotImplementedError(f"Replace-mode syncs support PostgreSQL and SQLite, not {connection.vendor}.")
    sql = template.format(
        records=connection.ops.quote_name(Record._meta.db_table),
        seen=connection.ops.quote_name(SyncSeenKeys._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sync.database_id, sync.cycle, sync.pk, sync.cycle])
        gone = cursor.rowcount
    SyncSeenKeys.objects.filter(sync=sync).delete()
    return gone


def acquire(sync_id: int, run: Run) -> None:
    """Make `run` the sync's one running run, or raise Skipped naming the run that is."""
    with transaction.atomic():
        sync = Sync.objects.select_for_update().get(pk=sync_id)
        holder = Run.objects.filter(pk=sync.running_run_id).first() if sync.running_run_id else None
        if holder is not None and holder.pk != run.pk and not holder.is_finished:
            if runs.is_alive(holder):
                raise Skipped(f"Sync {sync.key} is already running (run #{holder.pk}); this start was skipped.")
            # Its process is gone: the task of a killed worker. This run takes the cycle over.
            Run.objects.filter(pk=holder.pk, status=holder.status).update(
                status=Run.Status.FAILED,
                finished_at=timezone.now(),
                error=f"The worker running this sync stopped (process {holder.owner or 'unknown'} is gone); "
                f"run #{run.pk} resumes the cycle at page {sync.pages_done + 1}.",
            )
        sync.running_run = run
        sync.save(update_fields=["running_run"])


def release(sync_id: int, run: Run) -> None:
    with transaction.atomic():
        Sync.objects.filter(pk=sync_id, running_run=run).update(running_run=None)


def sync_row(worker: str, key: str) -> Sync:
    sync = Sync.objects.select_related("worker", "database").filter(worker__slug=worker, key=key).first()
    if sync is None or not sync.is_active:
        raise runs.not_in_worker(Sync, "sync", worker, key)
    return sync


def start_sync(sync: Sync, *, trigger: str, send: bool = True) -> Run:
    """Record a queued run of the sync and (unless `send` is false) queue its task."""
    with transaction.atomic():
        run = runs.create_run(Run.Kind.SYNC, sync.worker, sync.key, trigger=trigger, sync=sync)
        if send:
            runs.send(run)
    return run


def start_scheduled_sync(sync: Sync) -> Run | None:
    """A beat tick's run of the sync, or None when the tick is skipped because a run is still going.

    A continuous sync ticks every minute, so a long cycle would otherwise leave a skipped run per
    minute for ever. While the same run holds the sync, its first skipped tick is recorded as one
    skipped run, and each later tick only adds to that run's `progress` ("skipped_ticks", "last_tick_at").
    """
    with transaction.atomic():
        locked = Sync.objects.select_for_update().get(pk=sync.pk)
        holder = Run.objects.filter(pk=locked.running_run_id).first() if locked.running_run_id else None
        if holder is None or holder.is_finished or not runs.is_alive(holder):
            return runs.create_run(Run.Kind.SYNC, sync.worker, sync.key, trigger="schedule", sync=sync)
        now = timezone.now()
        recorded = (
            Run.objects.select_for_update()
            .filter(sync=sync, status=Run.Status.SKIPPED, trigger="schedule", progress__skipped_while=holder.pk)
            .order_by("-pk")
            .first()
        )
        if recorded is None:
            message = (
                f"Sync {sync.key} is already running (run #{holder.pk}); this start was skipped, and so are "
                f"further scheduled starts while it runs (counted here)."
            )
            progress = {"skipped_while": holder.pk, "skipped_ticks": 1, "last_tick_at": now.isoformat()}
            run = runs.create_run(Run.Kind.SYNC, sync.worker, sync.key, trigger="schedule", sync=sync)
            Run.objects.filter(pk=run.pk).update(
                status=Run.Status.SKIPPED, error=message, progress=progress, finished_at=now
            )
        else:
            progress = {
                **recorded.progress,
                "skipped_ticks": int(recorded.progress.get("skipped_ticks", 1)) + 1,
                "last_tick_at": now.isoformat(),
            }
            Run.objects.filter(pk=recorded.pk).update(progress=progress, finished_at=now)
    logger.info("Scheduled start of sync %s skipped: run #%s is still running", sync.key, holder.pk)
    return None


class _WrittenCounts:
    """Records written by committed pages, added to the metrics at most once a second and at the run's end.

    Once a page, each addition was a transaction of its own after the page's: on SQLite a second
    commit (a disk sync) a page, 4% of a sync's time. A process killed mid-run loses at most the
    last second's counts; a page rolled back is never counted.
    """

    def __init__(self) -> None:
        self.counts = dict.fromkeys(metrics.RECORD_OPERATIONS, 0)
        self.since = time.monotonic()

    def add(self, counts: dict[str, int]) -> None:
        for operation in self.counts:
            self.counts[operation] += counts[operation]
        if time.monotonic() - self.since >= _METRICS_EVERY:
            self.flush()

    def flush(self) -> None:
        for operation, amount in self.counts.items():
            metrics.count(metrics.SYNC_RECORDS_WRITTEN, operation, amount)
        self.counts = dict.fromkeys(self.counts, 0)
        self.since = time.monotonic()


def _run_pages(run: Run, context: runs.RunContext, on_progress: ProgressCallback | None) -> dict[str, Any]:
    sync_id = run.sync_id
    if sync_id is None:
        raise WorkerNotFound(f"Sync {run.target} of run #{run.pk} no longer exists.")
    acquire(sync_id, run)
    unreported = _WrittenCounts()
    try:
        definition = registry.get_sync(run.worker.slug, run.target)
        start = Sync.objects.get(pk=sync_id)
        progress: dict[str, Any] = {
            "cycle": start.cycle + (0 if start.cycle_in_progress else 1),
            "first_page": start.pages_done + 1 if start.cycle_in_progress else 1,
            "pages": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "deleted": 0,
            "cycle_complete": False,
        }
        if start.cycle_in_progress:
            logger.info("Resuming cycle %s of sync %s at page %s", start.cycle, start.key, start.pages_done + 1)
        sync = start
        for _ in range(max(1, app_settings.SYNC_MAX_PAGES)):
            page_number = sync.pages_done + 1 if sync.cycle_in_progress else 1
            # Each page is bounded on its own: a page past its limit fails the run, and the `finally`
            # below frees the sync, so the next run starts at once at this same page.
            with limits.enforce(limits.for_page(sync.key, sync.time_limit, page_number)):
                returned = definition.func(sync.state, context)
            page = parse_page(definition, returned, page_number)
            with transaction.atomic():
                sync = Sync.objects.select_for_update().get(pk=sync_id)
                if sync.running_run_id != run.pk:
                    raise LostLock(f"Run #{sync.running_run_id} took sync {sync.key} over; this run stopped.")
                if not sync.cycle_in_progress:
                    sync.cycle += 1
                    sync.pages_done = 0
                    sync.cycle_in_progress = True
                    # Left by a cycle that never completed here (its mode changed since): not this cycle's.
                    SyncSeenKeys.objects.filter(sync=sync).delete()
                counts = apply_page(sync, page, page_number)
                sync.state = page.next_state
                sync.pages_done += 1
                fields = ["state", "pages_done", "cycle", "cycle_in_progress"]
                if not page.has_more:
                    if sync.mode == Sync.Mode.REPLACE:
                        # A full snapshot is complete: what it did not mention is gone.
                        counts["deleted"] += delete_unseen(sync)
                    sync.cycle_in_progress = False
                    sync.last_cycle_completed_at = timezone.now()
                    fields.append("last_cycle_completed_at")
                sync.save(update_fields=fields)
                # The next page starts from this row as it now stands, without reading it all again;
                # its code gets the state as a read gives it (never the object this page returned).
                if connection.vendor == "sqlite":
                    sync.state = json.loads(json.dumps(sync.state))  # the field's own text and parse
                else:
                    # jsonb gives back its own form (keys reordered, 1e+16 an integer): read it.
                    sync.state = Sync.objects.values_list("state", flat=True).get(pk=sync_id)
                for name, count in counts.items():
                    progress[name] += count
                progress.update(pages=progress["pages"] + 1, cycle=sync.cycle, cycle_complete=not page.has_more)
                # The last pages one by one, so a command polling the row can show each even if it saw none.
                progress["recent_pages"] = [*progress.get("recent_pages", []), {"page": page_number, **counts}][
                    -_RECENT_PAGES:
                ]
                Run.objects.filter(pk=run.pk).update(progress=progress, heartbeat_at=timezone.now())
            run.progress = progress
            unreported.add(counts)
            logger.info(
                "Sync %s page %s: %s new, %s changed, %s unchanged, %s deleted",
                sync.key,
                page_number,
                counts["created"],
                counts["updated"],
                counts["unchanged"],
                counts["deleted"],
            )
            if on_progress is not None:
                on_progress(run)
            if not page.has_more:
                break
        return progress
    finally:
        release(sync_id, run)
        unreported.flush()  # at the end, and after a failure for the pages committed before it


def execute_sync(run_id: int, *, local: bool = False, on_progress: ProgressCallback | None = None) -> runs.Outcome:
    """One attempt at a sync run: pages while `has_more`, resuming a cycle a previous run left unfinished."""
    return perform(run_id, lambda run, context: _run_pages(run, context, on_progress), local=local, echo=local)
