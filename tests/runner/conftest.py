"""Fixtures for the runner tests: the site with the test worker deployed, and ways to wait for runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test.utils import override_settings

from tests.conftest import ROOT, TEST_WORKER_MODULES, Site, subprocess_env

HOOK_SECRET = "whsec-test-0123456789abcdef"


class RunnerSite(Site):
    """The live site with the test worker `runner-test` deployed beside the examples."""

    def __init__(self, url: str, gate_dir: Path, modules: list[str]) -> None:
        super().__init__(url)
        self.gate_dir = gate_dir
        self.modules = modules

    def manage(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """`python manage.py ...` in its own process, as a person would type it."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=subprocess_env(self.url, WORKER_MODULES=",".join(self.modules), **env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def runner_site(site: Site, tmp_path: Path) -> Iterator[RunnerSite]:
    from connections import registry
    from connections.deploy import deploy
    from connections.secrets import set_secrets

    modules = [*settings.WORKER_MODULES, *TEST_WORKER_MODULES]
    with override_settings(WORKER_MODULES=modules):
        registry.clear_cache()
        deploy()
        gate_dir = tmp_path / "gates"
        gate_dir.mkdir()
        set_secrets("runner-test", {"HOOK_SECRET": HOOK_SECRET, "GATE_DIR": str(gate_dir)})
        yield RunnerSite(site.url, gate_dir, modules)
    registry.clear_cache()


def wait_until(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_run(run_id: int, timeout: float = 60) -> Any:
    """The run, once it is finished (succeeded, failed or skipped)."""
    from connections.models import Run

    def finished() -> Any:
        run = Run.objects.get(pk=run_id)
        return run if run.is_finished else None

    return wait_until(finished, timeout, f"run #{run_id} to finish")
