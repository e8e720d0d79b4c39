"""Cancelling a run: one not started yet never starts; one running is told to stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..exceptions import RunNotCancellable
from ..models import Run
from . import runs

logger = logging.getLogger("connections.runner")


@dataclass(frozen=True)
class Cancellation:
    """What `cancel_run` did: `stopped` when the run will never start, else its running code was asked to stop."""

    run: Run
    stopped: bool

    def describe(self) -> str:
        if self.stopped:
            return f"Run #{self.run.pk} cancelled: it will not run."
        return (
            f"Run #{self.run.pk} is running: asked to stop (its process sees it within a few seconds; "
            "follow it with `workers runs`)."
        )


def cancel_run(run_id: int, by: str) -> Cancellation:
    """Cancel run `run_id` on behalf of `by` ("alice in the admin"); RunNotCancellable if it is unknown or finished.

    A queued or retrying run is marked cancelled at once: a worker that receives its task later
    finds it finished and does not execute it (runs.claim). A running run is flagged; the heartbeat
    of the process executing it sees the flag and raises RunCancelled in the code (see perform).
    A running run whose process is gone is cancelled at once, so nothing takes it over.
    """
    now = timezone.now()
    with transaction.atomic():
        # One conditional UPDATE each: a worker claiming the run at the same moment either sees it
        # cancelled, or has made it running first and the second UPDATE flags it.
        stopped = _cancel_unstarted(Run.objects.filter(pk=run_id), by, now)
        if not stopped:
            Run.objects.filter(pk=run_id, status=Run.Status.RUNNING, cancel_requested_at__isnull=True).update(
                cancel_requested_at=now, cancelled_by=by
            )
    run = Run.objects.select_related("worker").filter(pk=run_id).first()
    if run is None:
        raise RunNotCancellable(f"No run #{run_id}.")
    if not stopped and run.status == Run.Status.RUNNING and not runs.is_alive(run):
        stopped = Run.objects.filter(pk=run_id, status=Run.Status.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=Run.Status.CANCELLED, error=runs.cancelled_message(by, ran=True), finished_at=timezone.now()
        )
        run.refresh_from_db()
    if stopped:
        logger.info("Run %s cancelled by %s", run.pk, by, extra={"run_id": run.pk, "status": run.status})
        return Cancellation(run, stopped=True)
    if run.status == Run.Status.RUNNING:
        logger.info("Run %s asked to stop by %s", run.pk, by, extra={"run_id": run.pk, "status": run.status})
        return Cancellation(run, stopped=False)
    raise RunNotCancellable(f"Run #{run.pk} has already {_ended(run)}; there is nothing to cancel.")


def _cancel_unstarted(runs_: QuerySet[Run], by: str, now: datetime) -> int:
    """Those of `runs_` not started yet, cancelled in one conditional UPDATE: how many."""
    return runs_.filter(status__in=Run.NOT_STARTED).update(
        status=Run.Status.CANCELLED,
        error=runs.cancelled_message(by, ran=False),
        finished_at=now,
        cancel_requested_at=now,
        cancelled_by=by,
    )


def withdraw_unsent(run: Run, by: str) -> bool:
    """Cancel a run the broker did not take, if it has still not started; True when it was.

    For a caller that waits for its run (a command, an MCP call): it gives up at once, and the run
    must not start later, when a sweep sends it and nobody waits any more (or the caller has run it
    another way). A run that reached a worker meanwhile is left alone.
    """
    if not run.unsent:
        return False
    withdrawn = _cancel_unstarted(Run.objects.filter(pk=run.pk, unsent=True), by, timezone.now())
    if withdrawn:
        logger.info("Run %s cancelled by %s", run.pk, by, extra={"run_id": run.pk, "status": Run.Status.CANCELLED})
    return bool(withdrawn)


def _ended(run: Run) -> str:
    if run.status == Run.Status.CANCELLED:
        return "been cancelled"
    return {Run.Status.SUCCEEDED: "succeeded", Run.Status.FAILED: "failed"}.get(run.status, f"ended ({run.status})")
