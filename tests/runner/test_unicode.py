"""Text that is not valid Unicode and JSON nested too deep: refused at the door, cleaned where refusing loses data.

A lone surrogate ("\\ud800") parses and stores but cannot be encoded as UTF-8, so a page, `dumpdata` or a
terminal that later shows it fails; JSON nested thousands deep overflows whatever walks it recursively.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests

from connections.models import Record, Run, Sync, Tool
from tests.conftest import ROOT, csrf_from, subprocess_env

from .conftest import wait_for_run

LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
SURROGATE_INPUT = '{"payload": {"text": "\\ud800"}}'  # the JSON escape, as a person would type it


def nested(depth: int) -> str:
    return '{"payload": ' + '{"a": ' * depth + "{}" + "}" * depth + "}"


PROGRESS = re.compile(r"(Queued as run #|Running on |Run #\d+ still queued)")


def assert_one_line_error(answer: subprocess.CompletedProcess, *phrases: str) -> None:
    assert answer.returncode != 0
    assert "Traceback" not in answer.stderr, answer.stderr[-2000:]
    # Log records of libraries (kombu's "No hostname was supplied") are not the command's answer,
    # nor exec's progress while it waits ("Queued as run #N...", "Running on HOST...").
    lines = [
        line
        for line in answer.stderr.strip().splitlines()
        if line.strip() and not LOG_RECORD.match(line) and not PROGRESS.match(line)
    ]
    assert len(lines) == 1, answer.stderr[-2000:]
    for phrase in phrases:
        assert phrase in lines[0]


def dumpdata_ok(runner_site) -> None:
    answer = runner_site.manage("dumpdata", "connections")
    assert answer.returncode == 0, answer.stderr[-2000:]
    json.loads(answer.stdout)


# --- tool input: refused at the door ---------------------------------------------------------


def test_cli_refuses_input_holding_a_lone_surrogate(runner_site):
    answer = runner_site.manage("workers", "exec", "echo", "--input", SURROGATE_INPUT, "--timeout", "5")

    assert_one_line_error(answer, "not valid Unicode")
    assert not Run.objects.exists()


def test_cli_refuses_input_with_raw_bytes_that_are_not_utf8(runner_site):
    # argv as the kernel hands it over: bytes, here with \xff that no UTF-8 text contains.
    answer = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "workers",
            "exec",
            "echo",
            "--input",
            b'{"payload": {"text": "\xff"}}',
            "--timeout",
            "5",
        ],
        cwd=ROOT,
        env=subprocess_env(runner_site.url, WORKER_MODULES=",".join(runner_site.modules)),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert_one_line_error(answer, "--input", "not valid Unicode")
    assert not Run.objects.exists()


def test_cli_refuses_input_nested_too_deep(runner_site):
    answer = runner_site.manage("workers", "exec", "echo", "--input", nested(5000), "--timeout", "5")

    assert_one_line_error(answer, "--input", "nested more than 64 levels deep")
    assert not Run.objects.exists()


def test_start_tool_refuses_bad_input_for_every_entry_point(runner_site):
    from connections.exceptions import InvalidToolInputError
    from connections.runner.tools import start_tool

    with pytest.raises(InvalidToolInputError, match="not valid Unicode"):
        start_tool("runner-test", "echo", {"payload": {"\ud800": 1}}, trigger="test", send=False)
    deep: dict = {}
    for _ in range(3000):
        deep = {"a": deep}
    with pytest.raises(InvalidToolInputError, match="nested more than 64 levels deep"):
        start_tool("runner-test", "echo", {"payload": deep}, trigger="test", send=False)
    assert not Run.objects.exists()


def test_admin_run_form_refuses_a_surrogate_and_deep_json_with_a_form_error(runner_site):
    session = runner_site.admin_session()
    url = f"{runner_site.url}/admin/connections/tool/{Tool.objects.get(key='echo').pk}/run/"

    for payload, phrase in ((SURROGATE_INPUT[12:-1], "not valid Unicode"), (nested(3000)[12:-1], "nested more")):
        page = session.get(url, timeout=10)
        answer = session.post(url, data={"csrfmiddlewaretoken": csrf_from(page.text), "payload": payload}, timeout=30)
        assert answer.status_code == 200 and answer.url == url
        assert phrase in answer.text and "errorlist" in answer.text
    assert not Run.objects.exists()


# --- what worker code returns: stored cleaned (U+FFFD), every page and dump still work ---------


@pytest.mark.celery
def test_tool_result_log_and_error_with_surrogates_are_stored_cleaned(runner_site, celery_worker):
    answer = runner_site.manage("workers", "exec", "badText", "--timeout", "60")

    assert answer.returncode == 0, answer.stderr[-2000:]
    assert "Traceback" not in answer.stderr
    assert json.loads(answer.stdout) == {"text": "lone \ufffd surrogate", "\ufffdkey": ["\ufffd"]}
    failed = runner_site.manage("workers", "exec", "badError", "--timeout", "60")
    assert_one_line_error(failed, "broke on \ufffd text")

    text = Run.objects.get(target="badText")
    broken = Run.objects.get(target="badError")
    assert "logged \ufffd text" in text.log and "printed \ufffd text" in text.log
    assert broken.status == "failed" and broken.error == "ValueError: broke on \ufffd text"
    session = runner_site.admin_session()
    for run in (text, broken):
        page = session.get(f"{runner_site.url}/admin/connections/run/{run.pk}/change/", timeout=10)
        assert page.status_code == 200
    assert session.get(f"{runner_site.url}/admin/connections/run/", timeout=10).status_code == 200
    listed = runner_site.manage("workers", "runs")
    assert listed.returncode == 0 and "broke on \ufffd text" in listed.stdout
    dumpdata_ok(runner_site)


@pytest.mark.celery
def test_tool_result_nested_too_deep_fails_the_run_with_a_clear_message(runner_site, celery_worker):
    answer = runner_site.manage("workers", "exec", "deep", "--input", '{"depth": 5000}', "--timeout", "60")

    assert_one_line_error(answer, "result of tool deep is nested more than 64 levels deep")
    run = wait_for_run(Run.objects.get(target="deep").pk)
    assert run.status == "failed" and run.attempts == 1 and run.result is None
    page = runner_site.admin_session().get(f"{runner_site.url}/admin/connections/run/{run.pk}/change/", timeout=10)
    assert page.status_code == 200 and "nested more than 64 levels deep" in page.text


def test_sync_records_and_state_with_surrogates_are_stored_cleaned(runner_site):
    answer = runner_site.manage("workers", "sync", "run", "badTextSync", "--local")

    assert answer.returncode == 0, answer.stderr[-2000:]
    record = Record.objects.get(database__key="textItems")
    assert record.key == "key-\ufffd"
    assert record.properties["Title"]["value"] == "bad \ufffd title"
    assert Sync.objects.get(key="badTextSync").state == {"cursor": "\ufffd"}
    session = runner_site.admin_session()
    page = session.get(f"{runner_site.url}/admin/connections/record/{record.pk}/change/", timeout=10)
    assert page.status_code == 200 and "bad \ufffd title" in page.text
    assert session.get(f"{runner_site.url}/admin/connections/record/", timeout=10).status_code == 200
    dumpdata_ok(runner_site)


def test_sync_page_nested_too_deep_fails_the_run_with_a_clear_message(runner_site):
    answer = runner_site.manage("workers", "sync", "run", "deepSync", "--local")

    assert_one_line_error(answer, "nested more than 64 levels deep")
    assert Run.objects.get(target="deepSync").status == "failed"
    assert Sync.objects.get(key="deepSync").state is None


# --- rows stored before the fix ------------------------------------------------------------


def test_migration_cleans_what_sqlite_stored_before_the_fix(runner_site):
    import importlib

    from django.apps import apps
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("only SQLite ever stored lone surrogates (PostgreSQL refuses them)")
    tool = Tool.objects.get(key="echo")
    run = Run.objects.create(kind="tool", worker=tool.worker, target="echo", trigger="test", tool=tool)
    sync = Sync.objects.get(key="badTextSync")
    record = Record.objects.create(database=sync.database, key="1", properties={})
    # As SQLite stored them before: JSON text holding lone surrogate escapes (a valid pair is kept).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_run SET input = %s, result = %s WHERE id = %s",
            ['{"payload": {"text": "\\ud800", "ok": "\\ud83d\\ude00"}}', '"\\udfff"', run.pk],
        )
        cursor.execute("UPDATE connections_record SET properties = %s WHERE id = %s", ['{"\\ud801": 1}', record.pk])
        cursor.execute("UPDATE connections_sync SET state = %s WHERE id = %s", ['["\\udbff"]', sync.pk])
    assert runner_site.manage("dumpdata", "connections").returncode != 0  # what such a site has today

    migration = importlib.import_module("connections.migrations.0006_unicode")
    with connection.schema_editor(atomic=False) as editor:
        migration.clean_stored_text(apps, editor)

    run.refresh_from_db()
    assert run.input == {"payload": {"text": "\ufffd", "ok": "\U0001f600"}} and run.result == "\ufffd"
    assert Record.objects.get(pk=record.pk).properties == {"\ufffd": 1}
    assert Sync.objects.get(pk=sync.pk).state == ["\ufffd"]
    page = runner_site.admin_session().get(f"{runner_site.url}/admin/connections/run/{run.pk}/change/", timeout=10)
    assert page.status_code == 200
    dumpdata_ok(runner_site)


@pytest.mark.parametrize("bad_text", [False, True], ids=["deep", "deep and bad text"])
def test_a_webhook_handler_result_nested_too_deep_fails_the_run(runner_site, celery_worker, bad_text):
    body = {"depth": 5000, "bad_text": bad_text}
    answer = requests.post(f"{runner_site.url}/webhooks/runner-test/echoDeep/", json=body, timeout=10)

    assert answer.status_code == 202, answer.text
    run = wait_for_run(answer.json()["run"])
    assert run.status == "failed" and "nested more than 64 levels deep" in run.error


def test_nul_characters_from_worker_code_are_stored_cleaned(runner_site, celery_worker):
    answer = runner_site.manage("workers", "exec", "nulText", "--timeout", "60")

    assert answer.returncode == 0, answer.stderr[-2000:]
    run = Run.objects.get(target="nulText")
    assert run.status == "succeeded"
    assert run.result == {"text": "a \ufffd NUL", "\ufffdkey": 1} and "printed \ufffd NUL" in run.log
    page = runner_site.admin_session().get(f"{runner_site.url}/admin/connections/run/{run.pk}/change/", timeout=10)
    assert page.status_code == 200


def test_tool_input_with_a_nul_character_is_refused(runner_site):
    answer = runner_site.manage("workers", "exec", "echo", "--input", '{"payload": {"t": "\\u0000"}}', "--local")

    assert_one_line_error(answer, "NUL character")
