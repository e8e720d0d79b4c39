"""Run `python manage.py workers ...` in-process (call_command) and as a real process against the test database."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command

from ..conftest import ROOT, subprocess_env

PUBLIC_URL = "https://workers.example.test"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def assert_failed_with(self, reason: str) -> None:
        """Non-zero exit, and stderr is the one line `CommandError: <reason...>`."""
        assert self.returncode != 0, self.stdout
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("CommandError: "), self.stderr
        assert reason in lines[0], self.stderr
        assert "Traceback" not in self.stdout + self.stderr


def workers(*args: str, stdin: str | None = None) -> str:
    """`workers ...` through call_command; returns what it wrote to stdout."""
    out = io.StringIO()
    options = {"stdout": out, "stderr": io.StringIO()}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    call_command("workers", *args, **options)
    return out.getvalue()


@pytest.fixture
def manage(transactional_db: None) -> Callable[..., Result]:
    """`python manage.py ...` in a child process that uses this test's (committed) database."""

    def run(*args: str, stdin: str | None = None, **env: str) -> Result:
        environment = subprocess_env(PUBLIC_URL, **env)
        if "WORKER_MODULES" not in env:
            environment.pop("WORKER_MODULES", None)  # the contract's default: the bundled examples
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


VERSIONED_WORKER = """
from connections.sdk import Worker, j

worker = Worker({slug!r})


@worker.tool("codeVersion", title="Code version", description="Which code ran", schema=j.object({{}}))
def code_version(input, context):
    return {{"version": VERSION}}
"""


def write_versioned_worker(folder: Path, module: str, slug: str, version: int) -> Path:
    """A worker module whose tool `codeVersion` answers `version`: edited on disk between deploys."""
    path = folder / f"{module}.py"
    path.write_text(f"VERSION = {version}\n" + VERSIONED_WORKER.format(slug=slug))
    # An mtime that surely moved, even on a file system that keeps whole seconds: no stale .pyc.
    stamp = time.time() + version
    os.utime(path, (stamp, stamp))
    return path
