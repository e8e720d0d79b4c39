"""Cancelling runs: `workers exec` says what it waits for, `workers runs cancel`, Ctrl-C, and the admin's action."""

from __future__ import annotations

import os
import pty
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from connections.models import Run
from connections.runner.tools import start_tool
from tests.conftest import ROOT, CeleryWorker, csrf_from, start_celery_worker, subprocess_env

from .conftest import RunnerSite, wait_for_run, wait_until


class Command:
    """`python manage.py ...` left running, its stderr read line by line as it comes."""

    def __init__(self, site: RunnerSite, broker: Path, *args: str, stdin: int = subprocess.DEVNULL, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=subprocess_env(
                site.url,
                WORKER_MODULES=",".join(site.modules),
                CELERY_BROKER_DIR=str(broker),
                CELERY_BROKER_URL="filesystem://localhost//",
                **env,
            ),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # As in a terminal: Ctrl-C raises KeyboardInterrupt even when pytest itself runs in the
            # background (a script's `&` starts it with SIGINT ignored, which children inherit).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = 60) -> str:
        """The first stderr line holding `text`; fails after `timeout` seconds without one."""
        try:
            while True:
                line = self.lines.get(timeout=timeout)
                self.stderr.append(line)
                if text in line:
                    return line
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} on stderr; got {''.join(self.stderr)!r}") from None

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        assert self.proc.stdout is not None
        code = self.proc.wait(timeout=timeout)
        out = self.proc.stdout.read()
        while not self.lines.empty():
            self.stderr.append(self.lines.get())
        return code, out, "".join(self.stderr)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def broker(tmp_path: Path) -> Path:
    """A broker folder of this test's own: no Celery worker reads it until the test starts one."""
    folder = tmp_path / "broker"
    folder.mkdir()
    return folder


@pytest.fixture
def commands() -> Iterator[list[Command]]:
    started: list[Command] = []
    yield started
    for command in started:
        command.kill()


@pytest.fixture
def own_worker(runner_site: RunnerSite, broker: Path, tmp_path: Path) -> Iterator[list[CeleryWorker]]:
    started: list[CeleryWorker] = []
    yield started
    for worker in started:
        worker.stop()


def _start_worker(site: RunnerSite, broker: Path, log: Path, **env: str) -> CeleryWorker:
    return start_celery_worker(
        site.url,
        log,
        concurrency=1,
        WORKER_MODULES=",".join(site.modules),
        CELERY_BROKER_DIR=str(broker),
        CELERY_BROKER_URL="filesystem://localhost//",
        **env,
    )


def _exec(site: RunnerSite, broker: Path, commands: list[Command], *args: str) -> Command:
    command = Command(site, broker, "workers", "exec", *args)
    commands.append(command)
    return command


def test_exec_without_a_worker_says_it_is_queued_and_waiting(runner_site, broker, commands):
    command = _exec(runner_site, broker, commands, "add", "--input", '{"a": 1, "b": 2}')
    line = command.wait_for_line("Queued as run #")
    run = Run.objects.get(target="add")
    assert line.strip() == f"Queued as run #{run.pk}; waiting for a worker..."
    note = command.wait_for_line("still queued after")
    assert "is a Celery worker running?" in note and "make run" in note
    command.kill()
    assert run.status == "queued"


def _cancel(runner_site, broker: Path, run: Run):
    """`workers runs cancel ID` as a process, on the test's own broker folder."""
    return runner_site.manage(
        "workers",
        "runs",
        "cancel",
        str(run.pk),
        CELERY_BROKER_DIR=str(broker),
        CELERY_BROKER_URL="filesystem://localhost//",
    )


def test_a_queued_run_cancelled_never_runs_when_a_worker_comes(runner_site, broker, commands, own_worker, tmp_path):
    command = _exec(runner_site, broker, commands, "mark", "--input", '{"name": "queued"}')
    command.wait_for_line("Queued as run #")
    command.kill()  # abandoned, as after a closed terminal: its task waits in the broker
    run = Run.objects.get(target="mark")

    answer = _cancel(runner_site, broker, run)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"Run #{run.pk} cancelled: it will not run."

    worker = _start_worker(runner_site, broker, tmp_path / "worker.log")
    own_worker.append(worker)
    wait_until(lambda: "not executed (cancelled)" in worker.output(), 60, "the worker to receive the task")
    run.refresh_from_db()
    assert run.status == "cancelled" and run.attempts == 0
    assert run.error.startswith("Cancelled by ") and run.error.endswith("(workers runs cancel) before it ran.")
    assert not (runner_site.gate_dir / "ran-queued").exists()


def test_runs_cancel_of_a_finished_or_unknown_run_is_one_line_and_exit_1(runner_site):
    run = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED)
    for target, reason in [
        (str(run.pk), f"Run #{run.pk} has already succeeded; there is nothing to cancel."),
        ("999999", "No run #999999."),
    ]:
        answer = runner_site.manage("workers", "runs", "cancel", target)
        assert answer.returncode == 1, answer.stdout
        assert answer.stderr.strip() == f"CommandError: {reason}", answer.stderr
    answer = runner_site.manage("workers", "runs", "cancel", "abc")
    assert answer.returncode == 1 and answer.stderr.strip().startswith("CommandError: A run ID is a number")
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_cancelling_a_running_tool_stops_its_code(runner_site, broker, commands, own_worker, tmp_path):
    worker = _start_worker(runner_site, broker, tmp_path / "worker.log", WORKERS_RUN_CANCEL_CHECK="0.2")
    own_worker.append(worker)
    command = _exec(runner_site, broker, commands, "lingering", "--input", '{"name": "long"}', "--timeout", "300")
    wait_until((runner_site.gate_dir / "started-long").exists, 60, "the tool to start")
    command.wait_for_line("Running on ")
    run = Run.objects.get(target="lingering")

    answer = _cancel(runner_site, broker, run)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith(f"Run #{run.pk} is running: asked to stop")

    run = wait_for_run(run.pk, 60)  # well before the two minutes the tool would take
    assert run.status == "cancelled"
    assert run.error.startswith("Cancelled by ") and run.error.endswith("while it ran.")
    assert not (runner_site.gate_dir / "done-long").exists()
    code, out, err = command.finish()
    assert code == 1 and out == ""
    assert err.strip().endswith(f"CommandError: Run #{run.pk}: {run.error}")
    assert worker.proc.poll() is None  # the worker goes on with the next task


def test_exec_cancel_on_interrupt_cancels_the_waiting_run(runner_site, broker, commands):
    command = _exec(runner_site, broker, commands, "mark", "--input", '{"name": "x"}', "--cancel-on-interrupt")
    command.wait_for_line("Queued as run #")
    command.proc.send_signal(signal.SIGINT)
    code, out, err = command.finish()
    run = Run.objects.get(target="mark")
    assert code == 130 and out == "", err
    assert err.strip().splitlines()[-1] == f"CommandError: Interrupted. Run #{run.pk} cancelled: it will not run."
    assert "Traceback" not in err
    assert run.status == "cancelled" and "(Ctrl-C on workers exec) before it ran." in run.error


def test_exec_interrupted_at_a_terminal_asks_before_cancelling(runner_site, broker, commands):
    main, terminal = pty.openpty()
    try:
        command = Command(runner_site, broker, "workers", "exec", "mark", "--input", '{"name": "z"}', stdin=terminal)
        commands.append(command)
        command.wait_for_line("Queued as run #")
        command.proc.send_signal(signal.SIGINT)
        os.write(main, b"y\n")  # the person's answer, read once the question is asked
        code, out, err = command.finish()
    finally:
        os.close(main)
        os.close(terminal)
    run = Run.objects.get(target="mark")
    assert code == 130 and "Traceback" not in err
    assert f"Cancel run #{run.pk}? [y/N] " in err
    assert err.strip().endswith(f"CommandError: Interrupted. Run #{run.pk} cancelled: it will not run.")
    assert run.status == "cancelled"


def test_exec_interrupted_without_a_terminal_leaves_the_run_queued_and_says_how_to_cancel(
    runner_site, broker, commands
):
    command = _exec(runner_site, broker, commands, "mark", "--input", '{"name": "y"}')
    command.wait_for_line("Queued as run #")
    command.proc.send_signal(signal.SIGINT)
    code, out, err = command.finish()
    run = Run.objects.get(target="mark")
    assert code == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"CommandError: Interrupted; run #{run.pk} stays queued: cancel it with "
        f"`python manage.py workers runs cancel {run.pk}`."
    )
    assert run.status == "queued"


def _changelist_post(client: Client, data: dict[str, object]) -> object:
    url = reverse("admin:connections_run_changelist")
    token = csrf_from(client.get(url).content.decode())
    return client.post(url, {**data, "csrfmiddlewaretoken": token}, follow=True)


def test_admin_action_cancels_the_selected_runs(runner_site):
    queued = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)
    done = start_tool("runner-test", "add", {"a": 3, "b": 4}, trigger="test", send=False)
    Run.objects.filter(pk=done.pk).update(status=Run.Status.SUCCEEDED)
    client = Client(enforce_csrf_checks=True)
    client.login(username="admin", password="correct-horse-battery-staple-9")

    page = _changelist_post(client, {"action": "cancel_selected", "_selected_action": [queued.pk, done.pk]})
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 run cancelled (will not run); 1 already finished, left as it was." in text
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.error == "Cancelled by admin in the admin before it ran."
    assert Run.objects.get(pk=done.pk).status == "succeeded"


def test_admin_action_needs_the_cancel_permission(runner_site):
    run = start_tool("runner-test", "add", {"a": 1, "b": 2}, trigger="test", send=False)
    viewer = get_user_model().objects.create_user("viewer", password="viewer-password-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client = Client(enforce_csrf_checks=True)
    client.login(username="viewer", password="viewer-password-123")
    listing = client.get(reverse("admin:connections_run_changelist"))
    assert listing.status_code == 200 and "Cancel selected runs" not in listing.content.decode()

    page = _changelist_post(client, {"action": "cancel_selected", "_selected_action": [run.pk]})
    assert page.status_code == 200
    assert Run.objects.get(pk=run.pk).status == "queued"

    viewer.user_permissions.add(Permission.objects.get(codename="cancel_run"))
    page = _changelist_post(client, {"action": "cancel_selected", "_selected_action": [run.pk]})
    assert Run.objects.get(pk=run.pk).status == "cancelled"
