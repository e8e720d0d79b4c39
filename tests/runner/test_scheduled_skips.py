"""A scheduled sync whose run is still going: its beat ticks leave one skipped run, not one per tick."""

from __future__ import annotations

import pytest

from connections.models import Run, Sync

from .conftest import wait_for_run, wait_until

pytestmark = pytest.mark.celery


def skipped_ticks() -> int:
    """Ticks recorded as skipped: one per skipped run, or the count a skipped run carries."""
    runs = Run.objects.filter(target="gatedSync", status="skipped")
    return sum(int(run.progress.get("skipped_ticks", 1)) for run in runs)


def test_ticks_while_a_sync_runs_leave_one_skipped_run(runner_site, celery_worker):
    from connections.runner import start_sync
    from connections.tasks import run_scheduled_sync

    gates = runner_site.gate_dir
    (gates / "armed-1").touch()
    sync = Sync.objects.get(key="gatedSync")
    first = start_sync(sync, trigger="test")
    try:
        wait_until(lambda: (gates / "started-1").exists(), what="page 1 to start")
        for _ in range(3):  # what beat sends every minute for a continuous sync
            run_scheduled_sync.delay(sync.pk)
        wait_until(lambda: skipped_ticks() == 3, what="three ticks to be skipped")
    finally:
        (gates / "release-1").touch()

    skipped = Run.objects.get(target="gatedSync", status="skipped")
    assert f"already running (run #{first.pk})" in skipped.error
    assert skipped.progress["skipped_ticks"] == 3 and skipped.finished_at is not None
    assert wait_for_run(first.pk).status == "succeeded"

    # Once the run is over, the next tick runs the sync again.
    run_scheduled_sync.delay(sync.pk)
    ticked = wait_until(
        lambda: Run.objects.filter(target="gatedSync", trigger="schedule", status="succeeded").first(),
        what="the next tick's run",
    )
    assert ticked.pk not in (first.pk, skipped.pk)
    assert Run.objects.filter(target="gatedSync").count() == 3
