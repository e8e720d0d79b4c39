"""Syncs fill a database page by page on a real Celery worker; a killed worker's sync resumes where it stopped."""

from __future__ import annotations

import signal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from connections.models import Record, Run, Sync
from sandbox.models import SandboxItem
from tests.conftest import start_celery_worker

from .conftest import wait_for_run, wait_until

pytestmark = pytest.mark.celery


def sync_run(*args: str) -> str:
    out = StringIO()
    call_command("workers", "sync", "run", *args, "--timeout", "120", stdout=out, stderr=StringIO())
    return out.getvalue()


def item(n: int) -> SandboxItem:
    """The n-th sandbox item (ids keep growing from test to test)."""
    return SandboxItem.objects.order_by("id")[n - 1]


def records(database: str) -> dict[str, dict]:
    return {r.key: r.properties for r in Record.objects.filter(database__key=database)}


def test_sync_fills_the_database_and_a_second_run_changes_nothing(runner_site, celery_worker):
    out = sync_run("pagesSync")

    assert "page 1 done" in out and "page 3 done" in out
    assert "3 page(s), 25 record(s) written (25 new, 0 changed, 0 unchanged), 0 deleted" in out
    assert "cycle complete" in out
    filled = records("items")
    assert len(filled) == 25
    assert filled[str(item(7).pk)]["Title"] == {"type": "title", "value": "Item 7"}
    stamps = dict(Record.objects.values_list("key", "updated_at"))

    out = sync_run("pagesSync")

    assert "0 record(s) written (0 new, 0 changed, 25 unchanged), 0 deleted" in out
    assert records("items") == filled
    assert dict(Record.objects.values_list("key", "updated_at")) == stamps
    assert list(Run.objects.filter(target="pagesSync").values_list("status", flat=True)) == ["succeeded"] * 2


def test_a_delete_change_removes_the_record_and_a_change_updates_one(runner_site, celery_worker):
    sync_run("pagesSync")
    fifth, sixth = item(5), item(6)
    SandboxItem.objects.filter(pk=fifth.pk).update(deleted=True)
    SandboxItem.objects.filter(pk=sixth.pk).update(status="done")

    out = sync_run("pagesSync")

    assert "(0 new, 1 changed, 23 unchanged), 1 deleted" in out
    assert str(fifth.pk) not in records("items") and len(records("items")) == 24
    assert records("items")[str(sixth.pk)]["Status"]["value"] == "done"


def test_replace_mode_deletes_what_a_cycle_did_not_see(runner_site, celery_worker):
    sync_run("snapshotSync")
    assert len(records("snapshotItems")) == 25
    everything = set(records("snapshotItems"))
    gone = {str(item(3).pk), str(item(17).pk)}
    SandboxItem.objects.filter(pk__in=gone).delete()

    out = sync_run("snapshotSync")

    assert "2 deleted" in out
    assert set(records("snapshotItems")) == everything - gone


def record_writes(queries: CaptureQueriesContext) -> list[str]:
    """The statements that inserted or updated records."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE")) and "connections_record" in q["sql"]
    ]


@pytest.mark.parametrize("key, database", [("pagesSync", "items"), ("snapshotSync", "snapshotItems")])
def test_a_rerun_with_nothing_changed_writes_no_record(runner_site, key, database):
    sync_run(key, "--local")
    stored = {r.key: (r.properties, r.updated_at, r.cycle) for r in Record.objects.filter(database__key=database)}
    assert len(stored) == 25

    with CaptureQueriesContext(connection) as queries:
        out = sync_run(key, "--local")

    assert "0 record(s) written (0 new, 0 changed, 25 unchanged), 0 deleted" in out
    assert record_writes(queries) == []
    assert {
        r.key: (r.properties, r.updated_at, r.cycle) for r in Record.objects.filter(database__key=database)
    } == stored


def test_numbers_are_stored_as_json_has_them_and_a_rerun_cleaned_whole_writes_none_again(runner_site, monkeypatch):
    """NaN and the infinities are not JSON: stored as null, as JavaScript's JSON.stringify writes them
    (before, PostgreSQL refused the page and SQLite stored `NaN`). Exponents and integers beyond 64 bits
    keep their value. A rerun whose page is cleaned whole (a record with bad text beside them) makes
    the same digests, so it writes none of them again."""
    from tests.runner import workers_runner

    sync_run("numbersSync", "--local")
    stored = {r.key: r for r in Record.objects.filter(database__key="textItems")}
    assert {key: r.properties["Score"]["value"] for key, r in stored.items()} == {
        "nan": None,
        "inf": None,
        "big": 1e16,
        "small": 1.5e-7,
        "huge": 2**70,
        "half": 0.5,
        "float64 nan": None,
    }
    assert stored["float64 nan"].properties["Item ID"]["id"] == 2**70

    monkeypatch.setitem(workers_runner.NUMBERS, "mixed", True)
    with CaptureQueriesContext(connection) as queries:
        out = sync_run("numbersSync", "--local")

    assert "1 record(s) written (1 new, 0 changed, 7 unchanged)" in out
    assert len(record_writes(queries)) == 1
    after = {r.key: r.updated_at for r in Record.objects.filter(database__key="textItems")}
    assert {key: after[key] for key in stored} == {key: r.updated_at for key, r in stored.items()}


def test_a_replace_cycle_spread_over_runs_keeps_what_it_saw_unchanged(runner_site):
    sync_run("snapshotSync", "--local")
    everything = set(records("snapshotItems"))
    changed, gone = item(4), item(23)
    SandboxItem.objects.filter(pk=changed.pk).update(status="done")
    SandboxItem.objects.filter(pk=gone.pk).delete()

    # One page a run: the cycle's end (page 3) must still know what pages 1 and 2 saw unchanged.
    with override_settings(WORKERS_SYNC_MAX_PAGES=1):
        outs = [sync_run("snapshotSync", "--local") for _ in range(3)]

    assert "cycle not complete" in outs[0] and "cycle not complete" in outs[1]
    assert "cycle complete" in outs[2] and "1 deleted" in outs[2]
    assert set(records("snapshotItems")) == everything - {str(gone.pk)}
    assert records("snapshotItems")[str(changed.pk)]["Status"]["value"] == "done"


def test_sync_run_local_shows_progress_and_a_summary(runner_site):
    out = sync_run("pagesSync", "--local")

    assert [line.split(":")[0].strip() for line in out.splitlines() if "done:" in line] == [
        "page 1 done",
        "page 2 done",
        "page 3 done",
    ]
    assert "Sync pagesSync succeeded in" in out and "25 record(s) written" in out
    assert Run.objects.get().trigger == "cli-local"


def test_a_bad_page_fails_the_run_naming_the_property(runner_site):
    with pytest.raises(CommandError, match="property 'Colour' is not declared by database items"):
        sync_run("brokenSync", "--local")
    assert not Record.objects.exists()


def test_each_page_gets_the_state_as_stored_and_a_failed_run_counts_what_it_wrote(runner_site):
    """The state a page's code gets is the one stored, through JSON (a tuple comes back a list), not the
    object the previous page returned, and not what the code did to it after. The pages committed
    before a failure are kept and counted in the records-written metric."""
    from connections.models import MetricCounter
    from tests.runner import workers_runner

    workers_runner.STATES_GIVEN.clear()
    workers_runner.STATES_RETURNED.clear()
    with pytest.raises(CommandError, match="page 3 fails"):
        sync_run("stateSync", "--local")

    assert workers_runner.STATES_GIVEN == [None, {"page": 1, "pair": [1, "x"]}, {"page": 2, "pair": [2, "x"]}]
    assert set(records("textItems")) == {"state-1-1", "state-1-2", "state-2-1", "state-2-2"}
    assert Sync.objects.get(key="stateSync").state == {"page": 2, "pair": [2, "x"]}
    written = MetricCounter.objects.get(name="sync_records_written", label="created")
    assert written.value == 4


def test_an_overlapping_start_is_recorded_as_skipped(runner_site, celery_worker):
    from connections.runner import start_sync

    gates = runner_site.gate_dir
    (gates / "armed-1").touch()
    sync = Sync.objects.get(key="gatedSync")
    first = start_sync(sync, trigger="test")
    try:
        wait_until(lambda: (gates / "started-1").exists(), what="page 1 to start")
        with pytest.raises(CommandError, match=rf"already running \(run #{first.pk}\)"):
            sync_run("gatedSync")
    finally:
        (gates / "release-1").touch()

    skipped = Run.objects.exclude(pk=first.pk).get(target="gatedSync")
    assert skipped.status == "skipped"
    assert wait_for_run(first.pk).status == "succeeded"
    assert len(records("gatedItems")) == 25


def test_a_worker_killed_during_page_2_resumes_at_page_2(runner_site, celery_worker, tmp_path):
    from connections.runner import start_sync
    from connections.tasks import run_sync
    from workers_site.celery import app

    # What an uninterrupted run of the same pages leaves behind.
    sync_run("pagesSync")
    uninterrupted = records("items")

    gates = runner_site.gate_dir
    (gates / "armed-2").touch()
    with app.connection_for_write() as conn:  # a message left by an earlier killed worker (Redis keeps it)
        conn.default_channel.queue_purge("runner-kill-test")
    victim = start_celery_worker(
        runner_site.url,
        tmp_path / "victim.log",
        pool="solo",
        concurrency=1,
        queues="runner-kill-test",  # only this worker takes the task, not the shared one
        WORKER_MODULES=",".join(runner_site.modules),
    )
    try:
        run = start_sync(Sync.objects.get(key="gatedSync"), trigger="test", send=False)
        run_sync.apply_async(args=[run.pk], task_id=run.task_id, queue="runner-kill-test")
        wait_until(lambda: (gates / "started-2").exists(), what="page 2 to start")
        sync = Sync.objects.get(key="gatedSync")
        assert sync.pages_done == 1 and sync.cycle_in_progress and len(records("gatedItems")) == 10

        victim.stop(signal.SIGKILL)
    finally:
        victim.stop(signal.SIGKILL)
    (gates / "release-2").touch()

    out = sync_run("gatedSync")

    assert "resumed at page 2 of cycle 1" in out
    resumed = Run.objects.filter(target="gatedSync").exclude(pk=run.pk).get()
    assert resumed.status == "succeeded"
    assert resumed.progress["first_page"] == 2 and resumed.progress["pages"] == 2
    assert "page 2 after " in resumed.log and "page 1 after " not in resumed.log
    killed = Run.objects.get(pk=run.pk)
    assert killed.status == "failed" and f"run #{resumed.pk} resumes the cycle at page 2" in killed.error
    assert records("gatedItems") == uninterrupted
    assert Record.objects.filter(database__key="gatedItems").count() == 25


def test_a_scheduled_sync_runs_from_its_beat_entry(runner_site, celery_worker):
    from django_celery_beat.models import PeriodicTask

    from connections.tasks import run_scheduled_sync
    from workers_site.celery import app

    scheduled = Sync.objects.get(worker__slug="sandbox", key="itemsSync")  # schedule="15m"
    entry = PeriodicTask.objects.get(pk=scheduled.periodic_task_id)
    assert entry.interval.every == 15 and entry.task in app.tasks

    sync = Sync.objects.get(worker__slug="runner-test", key="pagesSync")
    run_scheduled_sync.apply_async(kwargs={"sync_id": sync.pk})

    run = wait_until(lambda: Run.objects.filter(target="pagesSync", trigger="schedule").first(), what="the run")
    assert wait_for_run(run.pk).status == "succeeded"
    assert len(records("items")) == 25


def test_a_killed_pool_process_gets_its_task_back_and_the_same_run_resumes(runner_site, celery_worker, tmp_path):
    """acks_late + reject_on_worker_lost: the message comes back, and the run takes itself over at page 2."""
    import os

    from connections.runner import start_sync
    from connections.tasks import run_sync
    from workers_site.celery import app

    gates = runner_site.gate_dir
    (gates / "armed-2").touch()
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("runner-kill-test")
    victim = start_celery_worker(
        runner_site.url,
        tmp_path / "victim.log",
        pool="prefork",
        concurrency=1,
        queues="runner-kill-test",
        WORKER_MODULES=",".join(runner_site.modules),
    )
    try:
        run = start_sync(Sync.objects.get(key="gatedSync"), trigger="test", send=False)
        run_sync.apply_async(args=[run.pk], task_id=run.task_id, queue="runner-kill-test")
        started = wait_until(lambda: (gates / "started-2").exists() and (gates / "started-2").read_text())
        os.kill(int(started), signal.SIGKILL)  # the pool process running page 2, not the worker
        (gates / "release-2").touch()

        run = wait_for_run(run.pk)
    finally:
        victim.stop()

    assert run.status == "succeeded" and run.attempts == 2
    assert run.progress["first_page"] == 2 and run.progress["pages"] == 2
    assert Run.objects.filter(target="gatedSync").count() == 1
    assert Record.objects.filter(database__key="gatedItems").count() == 25
