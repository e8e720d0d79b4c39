"""Runs left `running` by a dead process are queued again by the beat task, and finish on a live worker."""

from __future__ import annotations

import socket
import subprocess

import pytest
from django.utils import timezone

from connections.models import Run
from connections.runner.tools import start_tool
from connections.tasks import requeue_lost_runs

from .conftest import wait_for_run

pytestmark = pytest.mark.celery


def claimed_by_a_dead_process(run: Run, attempts: int) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now belongs to no process
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING,
        attempts=attempts,
        started_at=now,
        heartbeat_at=now,
        owner=f"{socket.gethostname()}:{gone.pid}",
    )


def test_a_run_whose_process_died_is_requeued_and_finishes(runner_site, celery_worker):
    run = start_tool("runner-test", "add", {"a": 2, "b": 3}, trigger="test", send=False)
    claimed_by_a_dead_process(run, attempts=1)
    assert requeue_lost_runs() == {"requeued": 1, "failed": 0}
    run = wait_for_run(run.pk)
    assert run.status == Run.Status.SUCCEEDED and run.result == {"sum": 5} and run.attempts == 2


def test_a_run_alive_elsewhere_is_left_alone_and_one_dying_too_often_is_failed(runner_site):
    alive = start_tool("runner-test", "add", {"a": 1, "b": 1}, trigger="test", send=False)
    Run.objects.filter(pk=alive.pk).update(
        status=Run.Status.RUNNING, attempts=1, heartbeat_at=timezone.now(), owner="another-machine:4242"
    )
    doomed = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)
    claimed_by_a_dead_process(doomed, attempts=99)
    assert requeue_lost_runs() == {"requeued": 0, "failed": 1}
    doomed.refresh_from_db()
    assert doomed.status == Run.Status.FAILED and "died 99 time(s)" in doomed.error
    assert Run.objects.get(pk=alive.pk).status == Run.Status.RUNNING
