"""Hung code ends: tools and sync pages past their time limit fail, on a real Celery worker and with --local."""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from connections.models import Record, Run, Sync
from connections.runner import limits
from connections.tasks import requeue_lost_runs
from tests.conftest import CeleryWorker, start_celery_worker

from .conftest import RunnerSite, wait_for_run, wait_until

pytestmark = pytest.mark.celery

# Far below the hours the hung code would take, far above the 2 s limits plus load on a shared machine.
BOUND = 60
QUEUE = "runner-time-limit-test"


def command(*args: str) -> str:
    out = StringIO()
    call_command("workers", *args, "--timeout", str(BOUND), stdout=out, stderr=StringIO())
    return out.getvalue()


def own_worker(site: RunnerSite, tmp_path: Path, **env: str) -> CeleryWorker:
    """A prefork worker of its own, on its own queue: its pool children may be killed without harm to others."""
    from workers_site.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)
    return start_celery_worker(
        site.url,
        tmp_path / "limits-worker.log",
        pool="prefork",
        concurrency=1,
        queues=QUEUE,
        WORKER_MODULES=",".join(site.modules),
        **env,
    )


def send_tool(key: str, data: dict) -> Run:
    """What `runs.send` does for a tool run, on the test's own queue."""
    from connections.runner import start_tool
    from connections.tasks import run_tool

    run = start_tool("runner-test", key, data, trigger="test", send=False)
    run_tool.apply_async(args=[run.pk], task_id=run.task_id, queue=QUEUE, **limits.celery_options(run))
    return run


def test_a_tool_past_its_time_limit_fails_saying_which_limit(runner_site, celery_worker):
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"Tool sleepy ran past its time limit of 2 s and was stopped; raise"):
        command("exec", "sleepy")

    assert time.monotonic() - started < BOUND
    run = Run.objects.get(target="sleepy")
    assert run.status == "failed" and run.attempts == 1  # hung code is not worth a retry
    assert '@worker.tool("sleepy", ...)' in run.error
    assert "going to sleep" in run.log and "time.sleep(3600)" in run.traceback


def test_a_tool_that_swallows_its_soft_limit_is_killed_and_not_run_again(runner_site, tmp_path):
    worker = own_worker(runner_site, tmp_path, WORKERS_TIME_LIMIT_GRACE="2")
    try:
        run = wait_for_run(send_tool("stubborn", {}).pk, timeout=BOUND)
        assert run.status == "failed" and run.attempts == 1
        assert "Tool stubborn did not stop at its time limit of 2 s and was killed at the hard limit (4 s)" in run.error
        assert "ignoring TimeLimitExceeded" in run.log
        assert "in stubborn" in run.traceback  # where the code was when it was killed

        # Its pool child is gone; the message that comes back finds the run finished and does nothing.
        wait_until(lambda: "not executed (failed)" in worker.output(), BOUND, "the redelivered message")
        assert requeue_lost_runs() == {"requeued": 0, "failed": 0, "sent": 0, "unsent": 0, "overdue": 0}
        run.refresh_from_db()
        assert run.status == "failed" and run.attempts == 1
        # And the worker goes on serving with a new pool child.
        assert wait_for_run(send_tool("add", {"a": 1, "b": 2}).pk, timeout=BOUND).result == {"sum": 3}
    finally:
        worker.stop()


def test_code_holding_the_interpreter_is_killed_by_celery_and_the_run_failed(runner_site, tmp_path, settings):
    settings.WORKERS_TIME_LIMIT_GRACE = 1  # the task's own time_limit is set when it is sent: 1 + 1 + 1 s
    worker = own_worker(runner_site, tmp_path, WORKERS_TIME_LIMIT_GRACE="1")
    try:
        run = wait_for_run(send_tool("hog", {}).pk, timeout=BOUND)
        assert run.status == "failed" and run.attempts == 1
        assert "Tool hog did not stop at its time limit of 1 s and was killed by Celery after 3 s" in run.error
        assert requeue_lost_runs() == {"requeued": 0, "failed": 0, "sent": 0, "unsent": 0, "overdue": 0}
        assert wait_for_run(send_tool("add", {"a": 2, "b": 2}).pk, timeout=BOUND).result == {"sum": 4}
    finally:
        worker.stop()
    assert Run.objects.get(pk=run.pk).status == "failed"


def test_a_sync_whose_page_hangs_fails_frees_the_sync_and_the_next_run_resumes(runner_site, celery_worker):
    hang = runner_site.gate_dir / "hang-2"
    hang.touch()

    with pytest.raises(CommandError, match=r"Page 2 of sync hangingSync ran past its time limit of 2 s"):
        command("sync", "run", "hangingSync")

    failed = Run.objects.get(target="hangingSync")
    sync = Sync.objects.get(key="hangingSync")
    assert failed.status == "failed" and sync.running_run_id is None
    assert sync.pages_done == 1 and sync.cycle_in_progress  # page 1 is kept

    hang.unlink()
    out = command("sync", "run", "hangingSync")

    assert "resumed at page 2 of cycle 1" in out and "cycle complete" in out
    assert Run.objects.exclude(pk=failed.pk).get(target="hangingSync").status == "succeeded"
    assert Record.objects.filter(database__key="hangingItems").count() == 25


def test_exec_local_of_a_hung_tool_ends_with_one_line(runner_site):
    started = time.monotonic()
    answer = runner_site.manage("workers", "exec", "sleepy", "--local", timeout=BOUND)

    assert time.monotonic() - started < BOUND
    assert answer.returncode != 0 and "Traceback" not in answer.stderr
    *output, error = answer.stderr.strip().splitlines()
    assert output == [f"{line.split(' INFO ')[0]} INFO runner_test_worker: going to sleep" for line in output]
    assert error.startswith("CommandError: Run #") and "Tool sleepy ran past its time limit of 2 s" in error
    assert Run.objects.get(target="sleepy").status == "failed"


def test_a_local_sync_page_that_swallows_its_soft_limit_is_killed_and_frees_the_sync(runner_site):
    hang = runner_site.gate_dir / "hang-1"
    hang.write_text("stubborn")

    answer = runner_site.manage("workers", "sync", "run", "hangingSync", "--local", WORKERS_TIME_LIMIT_GRACE="1")

    assert answer.returncode != 0 and "Traceback" not in answer.stderr
    assert answer.stderr.strip().splitlines() == [
        f"CommandError: Run #{Run.objects.get().pk} failed: Page 1 of sync hangingSync did not stop at its time limit of 2 s "
        'and was killed at the hard limit (3 s); raise time_limit in @worker.sync("hangingSync", ...) and run '
        "`python manage.py workers deploy`."
    ]
    run = Run.objects.get(target="hangingSync")
    assert run.status == "failed" and Sync.objects.get(key="hangingSync").running_run_id is None

    hang.unlink()
    assert "cycle complete" in command("sync", "run", "hangingSync", "--local")


def test_a_webhook_handler_past_its_time_limit_fails(runner_site, tmp_path):
    from connections.models import Webhook, WebhookEvent
    from connections.runner import runs
    from connections.tasks import handle_webhook

    worker = own_worker(runner_site, tmp_path, WORKERS_WEBHOOK_TIME_LIMIT="2")
    try:
        hook = Webhook.objects.get(worker__slug="runner-test", key="hangs")
        event = WebhookEvent.objects.create(
            webhook=hook, path="/webhooks/runner-test/hangs/", method="POST", body=b"{}", body_size=2, status="accepted"
        )
        run = runs.create_run(Run.Kind.WEBHOOK, hook.worker, "hangs", trigger="test", webhook_event=event)
        handle_webhook.apply_async(args=[run.pk], task_id=run.task_id, queue=QUEUE, **limits.celery_options(run))
        run = wait_for_run(run.pk, timeout=BOUND)
    finally:
        worker.stop()
    assert run.status == "failed" and run.attempts == 1
    assert "Webhook handler hangs ran past its time limit of 2 s" in run.error
    assert "WORKERS_WEBHOOK_TIME_LIMIT" in run.error
