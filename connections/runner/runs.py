"""A run's life: created queued, claimed by one process, kept alive by a heartbeat, finished once."""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import current_app
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    router,
    transaction,
)
from django.db.models import Field, Model, QuerySet
from django.db.models.functions import Coalesce
from django.db.models.sql import InsertQuery
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from .. import jsondata, prepared
from ..conf import app_settings
from ..exceptions import InvalidJSONError, WorkerNotFound
from ..models import Run, WebhookEvent
from ..sdk.types import RunContext  # noqa: F401 (defined in the SDK, which worker code imports)
from . import helpers, limits, statements

logger = logging.getLogger("connections.runner")

# What a publish raises when the broker is down or unreachable: kombu wraps its transports' errors,
# but the embedded broker's missing queue folder raises FileNotFoundError as it is.
BROKER_ERRORS = (BrokerError, OSError)

T = TypeVar("T")


@dataclass
class Outcome:
    """What one attempt at a run came to. `retry_in` is set when the run should be tried again."""

    run: Run
    executed: bool = True
    retry_in: float | None = None

    @property
    def status(self) -> str:
        return self.run.status


def not_in_worker(model: type[Model], kind: str, worker: str, key: str) -> WorkerNotFound:
    """The error for a tool or sync the worker lacks: a wrong --worker names the workers that have it;
    only a key no worker has asks for a deploy."""
    owners = sorted(
        model.objects.filter(key=key, is_active=True)
        .exclude(worker__slug=worker)
        .values_list("worker__slug", flat=True)
    )
    if not owners:
        return WorkerNotFound(f"No active {kind} {key!r} in worker {worker}: run `python manage.py workers deploy`.")
    where = f"worker {owners[0]}" if len(owners) == 1 else f"workers {', '.join(owners)}"
    return WorkerNotFound(f"Worker {worker} has no {kind} {key!r}; it is in {where}: pass `--worker {owners[0]}`.")


def current_owner() -> str:
    # Read at call time: a prefork pool child has another pid than the process that imported this.
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody has reaped yet is a zombie, not a worker
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_alive(run: Run, now: datetime | None = None) -> bool:
    """Whether the process executing `run` may still be working on it."""
    if run.status != Run.Status.RUNNING or run.heartbeat_at is None:
        return False
    now = now or timezone.now()
    if (now - run.heartbeat_at).total_seconds() > app_settings.RUN_LEASE:
        return False
    host, _, pid = run.owner.rpartition(":")
    # On this machine the answer need not wait for the lease: the process is there or it is not.
    if host == socket.gethostname() and pid.isdigit():
        return _pid_alive(int(pid))
    return True


def _new_run(kind: str, worker: Any, target: str, *, trigger: str, **fields: Any) -> Run:
    """An unsaved queued run: what create_run and create_run_if both insert."""
    return Run(kind=kind, worker=worker, target=target, trigger=trigger, task_id=str(uuid.uuid4()), **fields)


def create_run(
    kind: str,
    worker: Any,
    target: str,
    *,
    trigger: str,
    input: Any = None,
    tool: Any = None,
    sync: Any = None,
    webhook_event: Any = None,
) -> Run:
    run = _new_run(
        kind, worker, target, trigger=trigger, input=input, tool=tool, sync=sync, webhook_event=webhook_event
    )
    _insert(run, None)
    return run


Condition = tuple[str, tuple[Any, ...]]


def condition(queryset: QuerySet[Any]) -> Condition:
    """The SQL (and its parameters) of "a row of `queryset` exists", for create_run_if; compiled once, kept by the caller."""
    using = router.db_for_write(Run)
    sql, params = queryset.order_by().values("pk").query.get_compiler(using=using).as_sql()
    return sql, tuple(params)


def _insert_columns(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    meta = model._meta
    return tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated)


def _selected(conn: Any, columns: tuple[Field[Any, Any], ...], replaced: dict[str, str] | None = None) -> str:
    """The SELECT list of an `INSERT ... SELECT`: a placeholder per column, or the SQL `replaced` gives it."""
    # In a SELECT list PostgreSQL types a bare NULL or literal as text, which a bigint or jsonb column
    # refuses: each value is cast to its column's type (text columns take text, their length checked).
    typed = conn.vendor == "postgresql"
    return ", ".join(
        (replaced or {}).get(f.name)
        or (
            f"CAST(%s AS {f.db_type(conn)})"
            if typed and f.get_internal_type() not in ("CharField", "TextField")
            else "%s"
        )
        for f in columns
    )


def _values(model: type[Model], columns: tuple[Field[Any, Any], ...], obj: Model, using: str) -> list[Any]:
    """`obj`'s values for `columns` as an INSERT would send them (auto_now_add and defaults applied)."""
    query = InsertQuery(model)
    query.insert_values(columns, [obj])
    compiler = query.get_compiler(using=using)
    return [compiler.prepare_value(f, compiler.pre_save_val(f, obj)) for f in columns]


@functools.cache
def _insert_sql(using: str, conditional: bool) -> tuple[str, tuple[Field[Any, Any], ...]]:
    """`INSERT INTO run (columns) SELECT values [WHERE EXISTS ({where})] RETURNING id` for this database, and its columns."""
    conn = connections[using]
    meta = Run._meta
    columns = _insert_columns(Run)
    qn = conn.ops.quote_name
    where = " WHERE EXISTS ({where})" if conditional else ""
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in columns)}) "
        f"SELECT {_selected(conn, columns)}{where} RETURNING {qn(meta.pk.column)}"
    )
    return sql, columns


def _insert(run: Run, where: Condition | None) -> bool:
    """Insert the unsaved run (only if a row of `where` exists, when given); whether it was inserted.

    One statement, prepared on PostgreSQL: the same for every run, planned once per connection.
    """
    using = router.db_for_write(Run)
    template, columns = _insert_sql(using, where is not None)
    values = _values(Run, columns, run, using)
    where_sql, where_params = where or ("", ())
    row = prepared.fetchone(template.replace("{where}", where_sql), (*values, *where_params), connections[using])
    if row is None:
        return False
    run.pk = row[0]
    run._state.adding, run._state.db = False, using
    return True


@functools.cache
def _event_and_run_sql(using: str) -> tuple[str, tuple[Field[Any, Any], ...], tuple[Field[Any, Any], ...]]:
    """PostgreSQL: a webhook event and its run in one statement, nothing at all when the event's digest is taken.

    `WITH e AS (INSERT INTO event ... ON CONFLICT (replay_digest) DO NOTHING RETURNING id) INSERT INTO run ... SELECT
    ..., e.id FROM e RETURNING id, webhook_event_id`, and the columns of each insert.
    """
    conn = connections[using]
    qn = conn.ops.quote_name
    event_meta, run_meta = WebhookEvent._meta, Run._meta
    event_columns = _insert_columns(WebhookEvent)
    link = run_meta.get_field("webhook_event")
    run_columns = _insert_columns(Run)
    sql = (
        f"WITH e AS (INSERT INTO {qn(event_meta.db_table)} ({', '.join(qn(f.column) for f in event_columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(event_columns))}) "
        f"ON CONFLICT ({qn(event_meta.get_field('replay_digest').column)}) DO NOTHING "
        f"RETURNING {qn(event_meta.pk.column)}) "
        f"INSERT INTO {qn(run_meta.db_table)} ({', '.join(qn(f.column) for f in run_columns)}) "
        f"SELECT {_selected(conn, run_columns, {link.name: f'e.{qn(event_meta.pk.column)}'})} FROM e "
        f"RETURNING {qn(run_meta.pk.column)}, {qn(link.column)}"
    )
    return sql, event_columns, tuple(f for f in run_columns if f is not link)


def create_webhook_run(event: WebhookEvent, worker: Any, target: str, *, trigger: str) -> Run | None:
    """Store the unsaved accepted `event` and its queued run, and queue the run; None, and nothing stored
    or queued, when an event with the same replay digest is already stored (a replay).

    On PostgreSQL one prepared statement in autocommit, so one round trip stores both (no BEGIN,
    no COMMIT of their own), and a replay's insert does nothing rather than fail: a refused INSERT
    is written to the server's log with its values (the body, the headers), so replays would fill
    it. Elsewhere both inserts in one transaction, a replay's rolled back.
    """
    using = router.db_for_write(Run)
    conn = connections[using]
    if conn.vendor != "postgresql":
        try:
            with transaction.atomic(using=using):
                event.save(using=using)
                run = create_run(Run.Kind.WEBHOOK, worker, target, trigger=trigger, webhook_event=event)
        except IntegrityError:
            # A copy only when the digest is what was refused: anything else is a real failure.
            if (
                event.replay_digest is None
                or not WebhookEvent.objects.filter(replay_digest=event.replay_digest).exists()
            ):
                raise
            event.pk = None
            return None
        send(run)
        return run
    run = _new_run(Run.Kind.WEBHOOK, worker, target, trigger=trigger, webhook_event=event)
    template, event_columns, run_columns = _event_and_run_sql(using)
    values = (*_values(WebhookEvent, event_columns, event, using), *_values(Run, run_columns, run, using))
    row = prepared.fetchone(template, values, conn)
    if row is None:
        return None
    run.pk, event.pk = row
    for obj in (run, event):
        obj._state.adding, obj._state.db = False, using
    run.webhook_event = event
    send(run)
    return run


def create_run_if(where: Condition, kind: str, worker: Any, target: str, *, trigger: str, **fields: Any) -> Run | None:
    """`create_run` in one `INSERT ... SELECT ... WHERE EXISTS (where)`: None, and no row, when no row matches.

    What reading a row then inserting would do in two round trips to the database; and the check
    and the write are one statement, so nothing (a deploy, a deactivation) can fall between them.
    """
    run = _new_run(kind, worker, target, trigger=trigger, **fields)
    return run if _insert(run, where) else None


# The Celery task of each kind of run, by name: connections/tasks.py registers them under these
# names, so the runner queues them without importing the module that imports the runner.
TASK_NAMES = {
    Run.Kind.TOOL: "connections.tasks.run_tool",
    Run.Kind.SYNC: "connections.tasks.run_sync",
    Run.Kind.WEBHOOK: "connections.tasks.handle_webhook",
}


def send(run: Run, *, countdown: float | None = None) -> None:
    """Queue the run's Celery task once the surrounding transaction commits; the message holds the run id only.

    A broker that does not take the message (down, unreachable) loses nothing: the run is kept,
    marked `unsent` (in the database and on `run`, with the reason in `run.send_error`), and
    requeue_lost_runs sends it again once the broker answers. Nothing is raised, so the commit that
    stored the run (and a webhook's event) stands; a caller that waits for the run checks `run.unsent`.
    """
    transaction.on_commit(lambda: publish(run, countdown))


def publish(run: Run, countdown: float | None = None) -> bool:
    """Send the run's message now (its row is committed); False when the broker refused it (see send)."""
    name, options = TASK_NAMES[run.kind], limits.celery_options(run)
    try:
        # argsrepr given, so Celery does not build it with its (slow) saferepr on every publish.
        current_app.send_task(
            name,
            args=[run.pk],
            argsrepr=f"[{run.pk}]",
            kwargsrepr="{}",
            task_id=run.task_id,
            countdown=countdown,
            **options,
        )
    except BROKER_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"[:300]
        # Only while it has not started: a worker may have claimed it (the message got through
        # despite the error), and a running run is sent again by the dead-process sweep if need be.
        Run.objects.filter(pk=run.pk, status__in=Run.NOT_STARTED).update(unsent=True)
        run.unsent, run.send_error = True, reason
        logger.warning(
            "Run #%s is recorded but the broker did not take its message (%s): marked not sent.", run.pk, reason
        )
        return False
    return True


def unsent_note(run: Run) -> str:
    """What to tell a person whose run the broker did not take (see send)."""
    return (
        f"Run #{run.pk} is recorded, but the broker did not take it ({run.send_error or 'unreachable'}); "
        "it is sent again once the broker answers (requeue_lost_runs, every minute)."
    )


# What a run's message needs, for the sweeps that send it again: not the log, input or result of
# up to a thousand runs.
_MESSAGE_FIELDS = ("pk", "kind", "target", "task_id", "attempts", "due_at", "tool__time_limit")
# How early a retry's message may be claimed: the clocks of the machine that set its backoff and of
# the one that waited it out.
_EARLY_ENOUGH = timedelta(seconds=5)


def _seconds_until(due: datetime | None, now: datetime) -> float | None:
    """The countdown that keeps a retry's backoff, or None when it is due."""
    return (due - now).total_seconds() if due is not None and due > now else None


def _send_again(candidates: QuerySet[Run], limit: int) -> int:
    """Publish the first `limit` of `candidates` (not-started runs) again, in order; how many the
    broker took. Stops at the first refusal (publish flags that run unsent: the broker is away).

    After each publish the run is marked sent and due (now, or at its retry's time, which the
    message's countdown keeps), so neither sweep finds it again this tick; not if a worker has
    claimed it since (and perhaps been refused its own retry's message).
    """
    sent = 0
    for run in candidates.only(*_MESSAGE_FIELDS).select_related("tool")[:limit]:
        now = timezone.now()
        if not publish(run, _seconds_until(run.due_at, now)):
            break
        Run.objects.filter(pk=run.pk, status__in=Run.NOT_STARTED, attempts=run.attempts).update(
            unsent=False, due_at=max(run.due_at or now, now)
        )
        sent += 1
    return sent


def send_unsent(limit: int = 1000) -> tuple[int, int]:
    """Send again the queued runs whose message the broker did not take: (sent, still unsent).

    Oldest first; stops at the first refusal (the broker is still away: the next tick tries again).
    The flag is cleared only once the broker took the message, so a sweep that dies halfway loses
    nothing; a run sent twice (two sweeps at once, or a message that got through despite the error)
    is claimed once per attempt. A retry keeps the rest of its backoff (`due_at`).
    """
    waiting = Run.objects.filter(unsent=True, status__in=Run.NOT_STARTED)
    return _send_again(waiting.order_by("pk"), limit), waiting.count()


# The trigger of runs executed by the CLI process that made them (`--local`), never sent to a worker.
LOCAL_TRIGGER = "cli-local"


def send_overdue(limit: int = 1000) -> int:
    """Send again the not-started runs that no worker took within RUN_RESEND_AFTER seconds of being due.

    Their message was lost after the broker took it (a Redis restarted without persistence), or
    never sent (the process died between the commit and the publish). A run still waiting in a long
    queue is sent twice, and claimed once. Each is sent at most once a RUN_RESEND_AFTER: its `due_at`
    moves to now, after the publish (a sweep that dies in between sends it again, which is harmless).
    """
    if app_settings.RUN_RESEND_AFTER <= 0:
        return 0
    cutoff = timezone.now() - timedelta(seconds=app_settings.RUN_RESEND_AFTER)
    overdue = (
        # A `--local` run is never for the workers, even left queued or retrying by a process that died.
        Run.objects.filter(status__in=Run.NOT_STARTED, unsent=False)
        .exclude(trigger=LOCAL_TRIGGER)
        # queued_at is never after due_at: its condition, redundant, lets (status, queued_at) find the rows.
        .filter(queued_at__lt=cutoff)
        .alias(due=Coalesce("due_at", "queued_at"))
        .filter(due__lt=cutoff)
    )
    sent = _send_again(overdue.order_by("queued_at"), limit)
    if sent:
        logger.warning(
            "%s queued run(s) no worker took within %s s were sent again.", sent, app_settings.RUN_RESEND_AFTER
        )
    return sent


def claim(run_id: int) -> Run | None:
    """Mark the run running in this process, or None when it is finished or alive elsewhere.

    This is what makes a task safe to deliver twice: a finished run is never executed again, and a
    run whose process is still working is left to it. A run whose process died is taken over.
    """
    now = timezone.now()
    owner = current_owner()
    # The common case in one conditional UPDATE: of two deliveries of a queued run, the database
    # applies one process's UPDATE first and the other's then matches no row. It returns the run
    # with its worker and tool (its time limit and schema are read from it) on PostgreSQL; elsewhere
    # they are read next. A retry only once its backoff is over: a second message of the run (sent
    # again by a sweep, or redelivered by the broker) must not cut a provider's Retry-After short.
    # The early one is dropped; the retry's own message comes at its time. A run the broker was said
    # to refuse has reached a worker after all: `unsent` is cleared, so no sweep sends it again.
    run = statements.claim_row(run_id, owner, now, due_by=now + _EARLY_ENOUGH)
    if run is None:
        run = _take_over(run_id, owner, now)
    if run is None:
        return None
    _log_start(run)
    return run


def _take_over(run_id: int, owner: str, now: datetime) -> Run | None:
    """The run, marked running here, if it is `running` in a process that died; None otherwise."""
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).select_related("worker", "tool").filter(pk=run_id).first()
        # Not a retry whose backoff runs on (claim left it), nor a finished run, nor a live one.
        if run is None or run.status != Run.Status.RUNNING or is_alive(run):
            return None
        if run.cancel_requested_at is not None:
            # Cancelled while it ran, and its process died before it stopped: not taken over.
            run.status, run.finished_at = Run.Status.CANCELLED, now
            run.error = cancelled_message(run.cancelled_by or "someone", ran=True)
            run.save(update_fields=["status", "finished_at", "error"])
            return None
        run.status = Run.Status.RUNNING
        run.attempts += 1
        run.owner = owner
        run.heartbeat_at = now
        run.started_at = run.started_at or now
        run.unsent = False
        run.save(update_fields=["status", "attempts", "owner", "heartbeat_at", "started_at", "unsent"])
    return run


# Runs executed in the foreground by `workers exec --local` / `workers sync run --local`: their start
# and end lines go to DEBUG, since the command reports the outcome itself in one line. A set, not a
# context variable: the time-limit watchdog's thread records the end too. One id per local run, and
# such runs happen in short-lived command processes, so it stays small.
_foreground: set[int] = set()


def in_foreground(run_id: int) -> None:
    """This process runs the run for a person at a terminal: its start and end log lines are DEBUG."""
    _foreground.add(run_id)


def _level(run: Run, level: int) -> int:
    return logging.DEBUG if run.pk in _foreground else level


def _log_start(run: Run) -> None:
    fields = {"run_id": run.pk, "kind": run.kind, "worker": run.worker.slug, "target": run.target}
    fields.update(status=run.status, attempt=run.attempts, owner=run.owner)
    logger.log(
        _level(run, logging.INFO),
        "Run %s started: %s %s/%s, attempt %s, in %s",
        run.pk,
        run.kind,
        fields["worker"],
        run.target,
        run.attempts,
        run.owner,
        extra=fields,
    )


def _log_end(run: Run) -> None:
    """One line per attempt's end; a retrying run logs one per attempt, then its final status."""
    end = run.finished_at or timezone.now()
    duration = round((end - run.started_at).total_seconds(), 3) if run.started_at else None
    worker = run.worker.slug
    fields = {"run_id": run.pk, "kind": run.kind, "worker": worker, "target": run.target, "status": run.status}
    fields.update(duration=duration, attempt=run.attempts, owner=run.owner)
    logger.log(
        _level(run, logging.WARNING if run.status == Run.Status.FAILED else logging.INFO),
        "Run %s ended: %s %s/%s, status %s, duration %s s, in %s",
        run.pk,
        run.kind,
        worker,
        run.target,
        run.status,
        "-" if duration is None else f"{duration:.3f}",
        run.owner,
        extra=fields,
    )


def storable(value: Any) -> Any:
    """`value` with lone surrogates replaced by U+FFFD, whatever its nesting.

    What worker code produced (result, error, traceback, log) is kept rather than refused, which
    would lose the outcome; stored as it is, it would break every page, terminal and dump showing it
    (and PostgreSQL refuses it outright, leaving the run unfinished).
    """
    if isinstance(value, str):
        return jsondata.clean_text(value)
    if not isinstance(value, (dict, list, tuple)):
        return value
    try:
        return jsondata.clean(value)
    except InvalidJSONError:
        # Deeper than JSON_MAX_DEPTH, which each kind of run refuses where its code returns; this is
        # the last line: the JSON text form is cleaned without recursing in Python.
        return json.loads(jsondata.clean_text(json.dumps(value, ensure_ascii=False)))


def finish(run: Run, status: str, **fields: Any) -> bool:
    """Record the outcome, unless another process took the run over meanwhile (then it is theirs to record)."""
    values = {"status": status, **{name: storable(value) for name, value in fields.items()}}
    if status in Run.FINISHED:
        values["finished_at"] = timezone.now()
    updated = statements.finish_row(run.pk, run.owner, values)
    for name, value in values.items():
        setattr(run, name, value)
    if updated:
        _log_end(run)
    return updated


@contextmanager
def heartbeat(
    run: Run,
    *,
    overdue: Callable[[], bool] = lambda: False,
    on_cancel: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Refresh `heartbeat_at` from a thread while the run's code works, so others see it is alive.

    Not once `overdue()`: code past its hard time limit is stuck, and must not hold its sync's lock
    by looking alive (the lease then runs out even if this process could not be ended). Every
    RUN_CANCEL_CHECK seconds the thread also looks for a cancellation, and hands who asked to `on_cancel` once.
    """
    stop = threading.Event()
    interval = max(1.0, app_settings.RUN_LEASE / 4)
    check = min(interval, max(0.1, app_settings.RUN_CANCEL_CHECK)) if on_cancel is not None else interval
    began = time.monotonic()  # the claim stamped heartbeat_at

    def beat() -> None:
        told = False
        last_beat = began
        pause = 0.0  # started `check` seconds in (helpers.later): the first look is now
        try:
            while not stop.wait(pause):
                pause = check
                try:
                    if not told and on_cancel is not None:
                        by = cancelled_by(run.pk)
                        if by is not None:
                            told = True
                            on_cancel(by)
                    if time.monotonic() - last_beat < interval - 0.05 or overdue():
                        continue
                    last_beat = time.monotonic()
                    Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, owner=run.owner).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:
                    # A missed beat only shortens the lease. The database may be back at the next one
                    # (restarted, failed over) on a new connection: giving up here would let the lease
                    # run out while the code goes on, and another machine would run it a second time.
                    _close_quietly()
        finally:
            _close_quietly()

    pending = helpers.later(check, beat, f"run-{run.pk}-heartbeat")
    try:
        yield
    finally:
        stop.set()
        job = pending.cancel()
        if job is not None:
            job.join(timeout=interval + 5)


def cancelled_by(run_id: int) -> str | None:
    """Who asked to cancel the run while it ran, or None when nobody did."""
    row = Run.objects.filter(pk=run_id, cancel_requested_at__isnull=False).values_list("cancelled_by", flat=True)
    found = row.first()
    return None if found is None else (found or "someone")


def cancelled_message(by: str, *, ran: bool) -> str:
    return f"Cancelled by {by} {'while it ran' if ran else 'before it ran'}."


def _close_quietly() -> None:
    try:
        connection.close()
    except Exception:  # a connection the server already dropped may fail to close; it is gone either way
        pass


def fresh_connection() -> None:
    """Drop a database connection that a long-lived worker process may have lost, or kept past its age."""
    close_old_connections()


def reconnecting(statements: Callable[[], T]) -> T:
    """`statements` on this thread's database connection; run once more on a new one if the server dropped it.

    In place of a ping before them (Django's CONN_HEALTH_CHECKS, one round trip each time): a kept
    connection the server dropped while it waited or while a run's code ran (a restart, a failover,
    an idle timeout) fails the first statement, and `statements` run again on a new connection.
    Recording on a dead one would fail and leave the run `running` until its lease ran out, then run
    it a second time. `statements` must be safe to run twice: reads, and UPDATEs conditional on the
    state they change (claim, finish). Inside a transaction the error is the caller's, unretried.
    """
    if connection.in_atomic_block:
        return statements()
    connection.health_check_done = True  # the statements are the check
    try:
        return statements()
    except (OperationalError, InterfaceError):
        _close_quietly()
        return statements()
