"""Celery tasks: thin wrappers that take primary keys, call the runner and queue the retry it asks for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded

from .models import Run, Sync
from .runner import runs
from .runner.syncs import execute_sync, start_scheduled_sync
from .runner.tools import execute_tool
from .runner.webhooks import execute_webhook


def _drive(execute: Callable[[int], runs.Outcome], run_id: int) -> str:
    runs.fresh_connection()
    try:
        outcome = execute(run_id)
    except Run.DoesNotExist:
        return "no such run"  # acknowledged and dropped: there is nothing left to execute
    if outcome.retry_in is not None:
        # A new message for the same run: this one is acknowledged, the retry waits in the broker.
        runs.send(outcome.run, countdown=outcome.retry_in)
    return outcome.status if outcome.executed else f"not executed ({outcome.status})"


class RunTask(Task):
    """A task whose first argument is a run id."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Celery calls this in the worker's main process when it killed the pool child at the
        # task's `time_limit` (runner/limits.py: code that held the interpreter so our own hard
        # limit could not act). The message is acknowledged (acks_on_failure_or_timeout); the run
        # must be failed here, or the lost-run beat task would requeue it to hang again.
        if isinstance(exc, TimeLimitExceeded) and args:
            from .runner.execute import record_killed

            record_killed(int(args[0]))


# acks_late: a worker killed mid-task leaves the message to be delivered again; the runner's
# claim makes that second delivery harmless (a finished run is never executed twice). A run
# killed at its time limit is recorded failed before its process ends, so it is not run again.
@shared_task(name=runs.TASK_NAMES[Run.Kind.TOOL], base=RunTask, acks_late=True, ignore_result=True)
def run_tool(run_id: int) -> str:
    return _drive(execute_tool, run_id)


@shared_task(name=runs.TASK_NAMES[Run.Kind.SYNC], base=RunTask, acks_late=True, ignore_result=True)
def run_sync(run_id: int) -> str:
    return _drive(execute_sync, run_id)


@shared_task(name=runs.TASK_NAMES[Run.Kind.WEBHOOK], base=RunTask, acks_late=True, ignore_result=True)
def handle_webhook(run_id: int) -> str:
    return _drive(execute_webhook, run_id)


@shared_task(acks_late=True, ignore_result=True)
def run_scheduled_sync(sync_id: int) -> str:
    """django-celery-beat's entry for a sync (see deploy): one run per tick; ticks while one runs are counted
    on one skipped run (see start_scheduled_sync), not recorded one by one."""
    sync = Sync.objects.select_related("worker", "database").filter(pk=sync_id).first()
    if sync is None or not sync.is_active or not sync.worker.is_active:
        return "inactive"
    run = start_scheduled_sync(sync)
    if run is None:
        return "skipped: already running"
    return _drive(execute_sync, run.pk)


@shared_task(ignore_result=True)
def requeue_lost_runs() -> dict[str, int]:
    """Runs left `running` by a process that died are queued again (beat, every minute); runs whose
    message the broker did not take, or lost, are sent again.

    The embedded broker does not redeliver a message once a worker read it, and Redis only after
    its visibility timeout; the runner's claim takes the run over from the dead process. A run
    whose process died too often is failed instead, so a task that kills its worker cannot loop.
    """
    from django.utils import timezone

    from .conf import app_settings

    sent, unsent = runs.send_unsent()
    # While the broker still refuses (or more are waiting than a tick sends), it would refuse these too.
    overdue = runs.send_overdue() if not unsent else 0
    counts = {"requeued": 0, "failed": 0, "sent": sent, "unsent": unsent, "overdue": overdue}
    for run in Run.objects.filter(status=Run.Status.RUNNING).select_related("worker"):
        if runs.is_alive(run):
            continue
        if run.attempts > app_settings.TASK_MAX_RETRIES:
            Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                status=Run.Status.FAILED,
                finished_at=timezone.now(),
                error=f"The process running it died {run.attempts} time(s); not retried again.",
            )
            counts["failed"] += 1
            continue
        if runs.publish(run):  # refused: the next tick finds it still running in a dead process
            counts["requeued"] += 1
    return counts


@shared_task(ignore_result=True)
def purge_old_records() -> dict[str, int]:
    """Finished runs and webhook events past their retention period are deleted in batches (beat, hourly)."""
    from .retention import purge

    return purge()
