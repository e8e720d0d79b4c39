"""A run executed by a process that imported older worker code than was deployed is flagged, naming the process.

The worker module is a file in the test's folder, edited on disk between two deploys while a real Celery
worker (on a broker folder of its own) keeps the code it imported; the CLI runs as real processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from connections.models import Run, Worker

from ..conftest import private_broker, start_celery_worker
from .conftest import PUBLIC_URL, Result, write_versioned_worker

pytestmark = pytest.mark.celery

MODULE = "fingerprint_worker"


def write_worker(folder: Path, version: int) -> None:
    write_versioned_worker(folder, MODULE, "fingerprint-test", version)


def test_a_run_by_a_worker_that_kept_old_code_is_flagged_until_it_restarts(
    manage: Callable[..., Result], tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    env = {"WORKER_MODULES": MODULE, "PYTHONPATH": str(code), **private_broker(tmp_path)}

    def run_tool() -> tuple[dict, Result]:
        done = manage("workers", "exec", "codeVersion", "--timeout", "120", **env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), done

    write_worker(code, 1)
    assert manage("workers", "deploy", **env).returncode == 0
    first_fingerprint = Worker.objects.get(slug="fingerprint-test").code_fingerprint
    worker = start_celery_worker(PUBLIC_URL, tmp_path / "worker1.log", concurrency=1, **env)
    try:
        assert run_tool()[0] == {"version": 1}  # the worker imported version 1 now
        assert not Run.objects.get().code_mismatch

        write_worker(code, 2)
        deployed = manage("workers", "deploy", **env)
        assert "~ worker fingerprint-test: code changed" in deployed.stdout, deployed.stdout
        assert Worker.objects.get(slug="fingerprint-test").code_fingerprint != first_fingerprint

        result, done = run_tool()
        assert result == {"version": 1}  # the old code ran...
        run = Run.objects.latest("pk")
        assert run.code_mismatch and run.code_outdated  # ...and the run says so, naming the process to restart
        host, _, pid = run.owner.rpartition(":")
        assert f"process {pid} on {host}" in run.code_warning and "restart" in run.code_warning
        assert run.code_warning in done.stderr

        listing = manage("workers", "runs", **env)
        assert listing.returncode == 0, listing.stderr
        assert f"! {run.code_warning}" in listing.stdout
        assert listing.stdout.count("Ran outdated worker code") == 1  # the first run is not flagged

        admin = Client()
        admin.force_login(get_user_model().objects.create_superuser("admin", "admin@example.test", "x"))
        page = admin.get(f"/admin/connections/run/{run.pk}/change/")
        assert page.status_code == 200
        assert f"process {pid} on {host}" in page.content.decode()
    finally:
        worker.stop()

    worker = start_celery_worker(PUBLIC_URL, tmp_path / "worker2.log", concurrency=1, **env)
    try:
        result, done = run_tool()
        assert result == {"version": 2}
        assert not Run.objects.latest("pk").code_mismatch
        assert "outdated" not in done.stderr
    finally:
        worker.stop()
