"""Runs: `workers runs`, a run claimed once, and a run whose process died told apart from a live one."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.logging import redact
from connections.models import Run, Worker
from connections.runner import runs
from connections.runner.capture import BoundedText

from .conftest import HOOK_SECRET


def test_workers_runs_lists_recent_runs_with_status_and_duration(runner_site):
    for a in range(3):
        call_command("workers", "exec", "add", "--input", f'{{"a": {a}, "b": 1}}', "--local", stdout=StringIO())
    out = StringIO()

    call_command("workers", "runs", "--limit", "2", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["ID", "KIND", "TARGET", "STATUS"]
    assert len(lines) == 3
    newest = Run.objects.order_by("-pk").first()
    assert lines[1].split()[:4] == [str(newest.pk), "tool", "runner-test:add", "succeeded"]
    assert lines[1].split()[-1].endswith("s")  # the duration


def test_a_run_is_claimed_once_and_never_after_it_finished(runner_site):
    worker = Worker.objects.get(slug="runner-test")
    run = runs.create_run(Run.Kind.TOOL, worker, "add", trigger="test", input={"a": 1, "b": 2})

    claimed = runs.claim(run.pk)
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert runs.claim(run.pk) is None  # this process is alive and working on it
    runs.finish(claimed, Run.Status.SUCCEEDED)
    assert runs.claim(run.pk) is None


def test_a_tool_run_costs_five_sql_statements_on_the_worker(runner_site):
    """The claim (one conditional UPDATE, then the run read with its worker and tool), the worker's
    secrets and tokens (what its output is scrubbed of), and the outcome: nothing read twice."""
    from connections.runner.tools import execute_tool, start_tool

    run = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)

    with CaptureQueriesContext(connection) as queries:
        outcome = execute_tool(run.pk)

    assert outcome.status == "succeeded" and outcome.run.result == {"sum": 3}
    assert len(queries) <= 5, [q["sql"][:80] for q in queries.captured_queries]


def test_queueing_a_tool_run_costs_two_sql_statements(runner_site):
    """The deployed tool read, the run inserted: the task's time limit comes from the tool already read."""
    from connections.runner.tools import start_tool

    with CaptureQueriesContext(connection) as queries:
        run = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)

    assert Run.objects.get(pk=run.pk).status == "queued"
    assert len(queries) <= 2, [q["sql"][:80] for q in queries.captured_queries]


def test_a_run_whose_process_is_gone_is_not_alive(runner_site):
    worker = Worker.objects.get(slug="runner-test")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = runs.create_run(Run.Kind.TOOL, worker, "add", trigger="test")
    run.status, run.heartbeat_at = Run.Status.RUNNING, timezone.now()

    run.owner = f"{runs.current_owner().rsplit(':', 1)[0]}:{gone.pid}"
    assert not runs.is_alive(run)
    run.owner = runs.current_owner()
    assert runs.is_alive(run)
    run.owner = f"another-host:{os.getpid()}"  # elsewhere only the heartbeat tells
    assert runs.is_alive(run)
    run.heartbeat_at = timezone.now() - timezone.timedelta(hours=1)
    assert not runs.is_alive(run)


def test_captured_output_is_bounded_and_scrubbed():
    sink = BoundedText(10)
    sink.write("0123456789 and more")
    assert sink.getvalue().startswith("0123456789\n[9 more characters")
    text = f"GET /x?access_token=abc123 Authorization: Bearer eyJhbGciOi.xyz {HOOK_SECRET}"
    cleaned = redact(text, [HOOK_SECRET])
    assert "abc123" not in cleaned and "eyJhbGciOi" not in cleaned and HOOK_SECRET not in cleaned
