"""Tools run on a real Celery worker (or here with --local), with their input checked first."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from celery.signals import before_task_publish
from django.core.management import CommandError, call_command

from connections.models import Run, Tool

from .conftest import HOOK_SECRET, wait_for_run

pytestmark = pytest.mark.celery


def exec_tool(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("workers", "exec", *args, "--timeout", "120", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_exec_sends_a_task_and_prints_the_json_result(runner_site, celery_worker):
    out, _ = exec_tool("add", "--input", '{"a": 2, "b": 40}')

    assert json.loads(out) == {"sum": 42}
    run = Run.objects.get(kind="tool", target="add")
    assert run.status == "succeeded" and run.attempts == 1 and run.trigger == "cli"
    assert run.duration is not None and run.owner and run.owner.split(":")[-1].isdigit()
    # The tool's logging and print() are kept with the run.
    assert "adding 2 and 40" in run.log and "printed by the tool" in run.log


def test_bad_input_exits_non_zero_naming_the_field_and_sends_nothing(runner_site):
    published: list[str] = []

    def record(sender: str | None = None, **_: object) -> None:
        published.append(str(sender))

    before_task_publish.connect(record, weak=False)
    try:
        answer = runner_site.manage("workers", "exec", "add", "--input", '{"a": "two", "b": 1}')
        with pytest.raises(CommandError, match='field "b" is required'):
            exec_tool("add", "--input", '{"a": 1}')
        with pytest.raises(CommandError, match='field "colour" is not an accepted field'):
            exec_tool("add", "--input", '{"a": 1, "b": 2, "colour": "red"}')
    finally:
        before_task_publish.disconnect(record)

    assert answer.returncode != 0
    assert 'field "a"' in answer.stderr and "integer" in answer.stderr
    assert len(answer.stderr.strip().splitlines()) == 1
    assert published == [] and not Run.objects.exists()


def test_exec_local_runs_in_this_process(runner_site):
    out, _ = exec_tool("add", "--input", '{"a": 1, "b": 1}', "--local")

    assert json.loads(out) == {"sum": 2}
    run = Run.objects.get()
    assert run.trigger == "cli-local" and run.status == "succeeded"


def test_failing_tool_records_error_traceback_and_log(runner_site, celery_worker):
    with pytest.raises(CommandError, match="ValueError: the tool broke on purpose"):
        exec_tool("boom")

    run = Run.objects.get(target="boom")
    assert run.status == "failed" and run.attempts == 1  # not a passing failure: no retry
    assert "Traceback" in run.traceback and "the tool broke on purpose" in run.traceback
    assert "about to fail" in run.log


def test_large_result_is_truncated(runner_site, settings):
    settings.WORKERS_RUN_RESULT_LIMIT = 1000
    out, err = exec_tool("big", "--input", '{"size": 5000}', "--local")

    run = Run.objects.get(target="big")
    assert run.status == "succeeded" and run.result_truncated
    assert isinstance(run.result, str) and len(run.result) == 1000
    assert "truncated to 1000 characters" in err and out.strip() == run.result


def test_secrets_never_reach_the_message_the_log_or_the_error(runner_site, celery_worker):
    bodies: list[str] = []

    def record(body: object = None, headers: object = None, **_: object) -> None:
        bodies.append(json.dumps([body, headers], default=str))

    before_task_publish.connect(record, weak=False)
    try:
        with pytest.raises(CommandError) as failure:
            exec_tool("leaky")
    finally:
        before_task_publish.disconnect(record)

    run = Run.objects.get(target="leaky")
    assert bodies and all(HOOK_SECRET not in body for body in bodies)
    assert f"[{run.pk}]" in bodies[0]  # the message carries the run's id
    for text in (run.log, run.error, run.traceback, str(failure.value)):
        assert HOOK_SECRET not in text
    assert "[redacted]" in run.log and "[redacted]" in run.error


def test_passing_failure_is_retried_and_then_succeeds(runner_site, celery_worker):
    out, err = exec_tool("retryOnce")

    assert json.loads(out) == {"attempt": 2}
    run = Run.objects.get(target="retryOnce")
    assert run.status == "succeeded" and run.attempts == 2 and run.error == ""
    assert "busy, come back later" in err  # the person waiting saw the retry coming


def test_a_finished_run_is_not_executed_again(runner_site, celery_worker):
    from connections.tasks import run_tool

    run = wait_for_run(_start("add", {"a": 1, "b": 2}))
    assert run.status == "succeeded" and run.attempts == 1

    # A second delivery of the same message (acks_late redelivery) does nothing.
    run_tool.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.attempts == 1 and run.result == {"sum": 3}


def _start(key: str, data: object) -> int:
    from connections.runner import start_tool

    return start_tool("runner-test", key, data, trigger="test").pk


def test_a_message_that_outlived_its_run_is_dropped(runner_site):
    from connections.tasks import run_tool

    assert run_tool.apply(args=[987654]).get() == "no such run"


def test_a_tool_receives_the_run_context_the_sdk_exports(runner_site, celery_worker):
    out, _ = exec_tool("typedTool")
    assert json.loads(out) == {"context": True, "kind": "tool"}


def test_input_is_checked_against_the_deployed_schema_the_run_form_shows(runner_site):
    # One source of truth at run time: the deployed row. A deploy that made "note" required (the
    # row as the admin's Run form reads it) is what `workers exec` checks, not the imported code.
    tool = Tool.objects.get(worker__slug="runner-test", key="add")
    tool.input_schema = {**tool.input_schema, "required": ["a", "b", "note"]}
    tool.save(update_fields=["input_schema"])

    with pytest.raises(CommandError, match='field "note" is required'):
        exec_tool("add", "--input", '{"a": 1, "b": 2}', "--local")
    assert not Run.objects.exists()
