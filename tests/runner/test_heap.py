"""A worker's long-lived objects are left out of garbage collections while runs work (runtime.settle_heap).

A sync's pages bring on full collections, each walking every object of the process; with Django and
the worker code frozen they walk only what the runs made (a sync's first run on SQLite: 28,000-30,000
records/s before, about 41,000 after, `make bench sync_upsert`).
"""

from __future__ import annotations

import gc
import json
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.celery


def exec_heap(*args: str) -> dict:
    out = StringIO()
    call_command("workers", "exec", "heap", *args, "--timeout", "60", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_a_celery_pool_process_runs_tools_with_its_startup_objects_and_the_worker_code_frozen(
    runner_site, celery_worker
):
    seen = exec_heap()

    # Django and Celery alone are over 100,000 objects; the worker code is imported by the pool
    # process, after its parent froze what it had, and frozen there too.
    assert seen["frozen"] > 50_000 and seen["code_frozen"]


def test_a_local_run_freezes_them_while_it_runs_and_not_after(runner_site):
    assert gc.get_freeze_count() == 0

    seen = exec_heap("--local")

    assert seen["frozen"] > 50_000 and seen["code_frozen"]
    # This process goes on (a test's, a shell's): what it holds can be collected again.
    assert gc.get_freeze_count() == 0
