"""`workers exec TOOL`, `workers sync run SYNC`, `workers runs`: run code on a Celery worker or here."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from .. import jsondata, runtime
from ..exceptions import RunNotCancellable
from ..models import Run, Sync, Tool
from ..runner import runs
from ..runner.cancel import cancel_run, withdraw_unsent
from ..runner.syncs import execute_sync, start_sync, sync_row
from ..runner.tools import execute_tool, start_tool
from . import add_command, add_worker_option, positive_seconds, resolve_worker

_POLL = 0.2
# When `exec` says again that its run is still queued: after 10 s, then every 30 s.
_QUEUED_NOTE_FIRST, _QUEUED_NOTE_EVERY = 10.0, 30.0
_CANCEL_ON_INTERRUPT_HELP = "on Ctrl-C while waiting, cancel the run without asking (default: ask on a terminal)"


def add_arguments(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "exec",
        help="run a tool on a Celery worker (or here with --local) and print its result",
        description=(
            "Run a tool and print its JSON result on stdout (nothing else goes there: pipe it to jq).\n"
            "The input is checked against the tool's schema before anything runs. Without --local the\n"
            "run is queued for a Celery worker and this command waits for it; with --local it runs in\n"
            "this process, where the tool's print() output goes to stderr and a pulled .env may supply\n"
            "the token. Every run is recorded (`workers runs`)."
        ),
        example_lines=[
            "python manage.py workers exec getMe",
            'python manage.py workers exec searchNotes --worker notes --input \'{"query": "bugs"}\'',
            "python manage.py workers exec getMe --local | jq .",
        ],
    )
    p.add_argument("tool", metavar="TOOL", help="the tool's key, as in @worker.tool(KEY, ...)")
    p.add_argument("--input", default="{}", help="the tool's input as a JSON object")
    p.add_argument("--local", action="store_true", help="run in this process; a pulled .env may supply the token")
    p.add_argument("--timeout", type=positive_seconds, default=600, help="seconds to wait for the result")
    p.add_argument("--cancel-on-interrupt", action="store_true", help=_CANCEL_ON_INTERRUPT_HELP)
    add_worker_option(p)
    p.set_defaults(handler=handle_exec)

    sync = add_command(
        subparsers,
        "sync",
        help="run syncs",
        description="Run a worker's syncs by hand, beside their schedules.",
        example_lines=[
            "python manage.py workers sync run itemsSync",
            "python manage.py workers sync run itemsSync --local",
        ],
    )
    sub = sync.add_subparsers(dest="sync_command", required=True, metavar="SUBCOMMAND")
    p = add_command(
        sub,
        "run",
        help="run a sync to completion, page by page",
        description=(
            "Run a sync to the end of its cycle (pages while has_more), printing each page's counts.\n"
            "An interrupted cycle resumes where it stopped. Without --local the run is queued for a\n"
            "Celery worker and this command follows it; with --local it runs in this process."
        ),
        example_lines=[
            "python manage.py workers sync run itemsSync",
            "python manage.py workers sync run githubIssuesSync --worker github --local",
        ],
    )
    p.add_argument("sync", metavar="SYNC", help="the sync's key, as in @worker.sync(KEY, ...)")
    p.add_argument("--local", action="store_true", help="run in this process instead of on a Celery worker")
    p.add_argument("--timeout", type=positive_seconds, default=3600, help="seconds to wait for the sync")
    p.add_argument("--cancel-on-interrupt", action="store_true", help=_CANCEL_ON_INTERRUPT_HELP)
    add_worker_option(p)
    p.set_defaults(handler=handle_sync_run)

    p = add_command(
        subparsers,
        "runs",
        help="recent runs with status and duration",
        description=(
            "Recent runs of tools, syncs and webhooks, newest first: status, attempts, when queued,\n"
            "duration and the first line of the error."
        ),
        example_lines=[
            "python manage.py workers runs",
            "python manage.py workers runs --status failed --limit 50",
            "python manage.py workers runs --kind sync --worker sandbox",
        ],
    )
    p.add_argument("--limit", type=int, default=20, help="how many runs to show")
    p.add_argument("--kind", choices=[k.value for k in Run.Kind], help="only tools, syncs or webhooks")
    p.add_argument("--status", choices=[s.value for s in Run.Status], help="only runs with this status")
    add_worker_option(p)
    p.set_defaults(handler=handle_runs)
    sub = p.add_subparsers(dest="runs_command", metavar="ACTION")
    cancel = add_command(
        sub,
        "cancel",
        help="cancel a run: a queued or retrying one never starts, a running one is told to stop",
        description=(
            "Cancel a run: a queued or retrying run never starts; a running run is told to stop\n"
            "(its code meets RunCancelled within a few seconds)."
        ),
        example_lines=["python manage.py workers runs cancel 42"],
    )
    cancel.add_argument("run_id", metavar="ID", help="the run's number, as `workers runs` and the admin show it")
    cancel.set_defaults(handler=handle_cancel)


def _who(how: str) -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container), nor LOGNAME/USER set
        user = "a user"
    return f"{user} ({how})"


def _waiting_notes(command: Any) -> Callable[[Run], None]:
    """Lines on stderr while the run waits: queued (and for how long), then where it runs."""
    started = time.monotonic()
    shown = {"queued_at": 0.0, "attempt": 0}

    def note(run: Run) -> None:
        now = time.monotonic() - started
        if run.status == Run.Status.QUEUED:
            if not shown["queued_at"]:
                shown["queued_at"] = -1.0  # the first line is written by the caller, at once
                return
            due = _QUEUED_NOTE_FIRST if shown["queued_at"] < 0 else shown["queued_at"] + _QUEUED_NOTE_EVERY
            if now >= due:
                shown["queued_at"] = now
                command.stderr.write(
                    f"Run #{run.pk} still queued after {now:.0f} s; is a Celery worker running? "
                    "(`make run` starts one; or `celery -A workers_site worker`)"
                )
        elif run.status == Run.Status.RUNNING and run.attempts != shown["attempt"]:
            shown["attempt"] = run.attempts
            host, _, pid = run.owner.rpartition(":")
            again = f" (attempt {run.attempts})" if run.attempts > 1 else ""
            command.stderr.write(f"Running on {host or run.owner} (process {pid}){again}...")

    return note


def _wait(
    command: Any,
    run: Run,
    options: dict[str, Any],
    on_change: Callable[[Run], None] | None = None,
) -> Run:
    """Poll the run's row (there is no result backend) until it is finished; Ctrl-C may cancel it."""
    timeout = options["timeout"]
    notes = _waiting_notes(command)
    deadline = time.monotonic() + timeout
    seen: tuple[Any, ...] = ()
    try:
        # Inside: from this line on, Ctrl-C offers to cancel the run the line names.
        command.stderr.write(f"Queued as run #{run.pk}; waiting for a worker...")
        while True:
            run.refresh_from_db()
            notes(run)
            state = (run.status, run.attempts, json.dumps(run.progress, sort_keys=True))
            if on_change is not None and state != seen:
                on_change(run)
            seen = state
            if run.is_finished:
                return run
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Run #{run.pk} is still {run.status} after {timeout:g} s; is a Celery worker running "
                    "(`celery -A workers_site worker`)? Follow it with `python manage.py workers runs`, "
                    f"or cancel it with `python manage.py workers runs cancel {run.pk}`."
                )
            time.sleep(_POLL)
    except KeyboardInterrupt:
        _interrupted(command, run, options.get("cancel_on_interrupt", False))
        raise  # not reached: _interrupted always raises


def _ask(command: Any, question: str) -> bool:
    stdin = getattr(command, "stdin", None)
    if stdin is None or not stdin.isatty():
        return False
    command.stderr.write(question, ending=" ")
    command.stderr.flush()
    try:
        return stdin.readline().strip().lower() in ("y", "yes")
    except (KeyboardInterrupt, EOFError):  # a second Ctrl-C is a no
        return False


def _interrupted(command: Any, run: Run, cancel: bool) -> None:
    """Ctrl-C while waiting: cancel the run if asked to (or if the person says so), else say how to; exit 130."""
    command.stderr.write("")  # past the ^C the terminal echoed
    # The interrupt may have come in the middle of a query: a fresh connection for what follows.
    connection.close()
    if cancel or _ask(command, f"Cancel run #{run.pk}? [y/N]"):
        try:
            done = cancel_run(run.pk, _who("Ctrl-C on workers exec"))
        except RunNotCancellable as exc:
            raise CommandError(str(exc), returncode=130) from None
        raise CommandError(f"Interrupted. {done.describe()}", returncode=130)
    run.refresh_from_db()
    raise CommandError(
        f"Interrupted; run #{run.pk} stays {run.status}: cancel it with "
        f"`python manage.py workers runs cancel {run.pk}`.",
        returncode=130,
    )


def _retry_note(command: Any) -> Callable[[Run], None]:
    def note(run: Run) -> None:
        if run.status == Run.Status.RETRYING:
            command.stderr.write(command.style.WARNING(run.error))

    return note


def _local_loop(execute: Callable[[], runs.Outcome], command: Any) -> Run:
    """Attempts in this process, with the same retries and waits a Celery worker would make."""
    # The code's print() goes to stderr: stdout carries only this command's own output (a tool's
    # JSON result, for `| jq`). command.stdout wraps the real stdout, taken before this.
    with contextlib.redirect_stdout(sys.stderr), runtime.settled_heap():
        while True:
            outcome = execute()
            if outcome.retry_in is None:
                return outcome.run
            command.stderr.write(command.style.WARNING(outcome.run.error))
            time.sleep(outcome.retry_in)


def _fail_unless_succeeded(run: Run) -> None:
    if run.status == Run.Status.SUCCEEDED:
        return
    if run.status == Run.Status.SKIPPED:
        raise CommandError(run.error or f"Run #{run.pk} was skipped.")
    if run.status == Run.Status.CANCELLED:
        raise CommandError(f"Run #{run.pk}: {run.error or 'cancelled'}")
    raise CommandError(f"Run #{run.pk} failed: {run.error or 'no error recorded'}")


def _fail_if_unsent(run: Run, command_name: str) -> None:
    # Waiting would only time out: nothing reaches a worker until the broker answers again.
    if withdraw_unsent(run, f"`workers {command_name}` (the broker did not take it)"):
        raise CommandError(
            f"The broker did not take run #{run.pk} ({run.send_error}), so it was cancelled before it ran. "
            "Check CELERY_BROKER_URL, or run it here with --local."
        )


def handle_exec(command: Any, options: dict[str, Any]) -> None:
    # One line for malformed JSON, JSON nested too deep, and text that is not valid Unicode
    # (a \ud800 escape, or bytes from argv that are not UTF-8); start_tool checks again for every caller.
    data = jsondata.loads(options["input"], what="--input")
    worker = resolve_worker(options.get("worker"), key=options["tool"], model=Tool, kind="tool")
    local = options["local"]
    # Validation happens here, before any run or task exists: bad input sends nothing.
    run = start_tool(worker.slug, options["tool"], data, trigger=runs.LOCAL_TRIGGER if local else "cli", send=not local)
    if local:
        run = _local_loop(lambda: execute_tool(run.pk, local=True), command)
    else:
        _fail_if_unsent(run, "exec")
        run = _wait(command, run, options, _retry_note(command))
    if run.code_mismatch:
        command.stderr.write(command.style.WARNING(run.code_warning))
    _fail_unless_succeeded(run)
    if run.result_truncated:
        command.stderr.write(command.style.WARNING(f"The result was truncated to {len(run.result)} characters."))
        command.stdout.write(run.result)
    else:
        command.stdout.write(json.dumps(run.result, indent=2, ensure_ascii=False))


def describe_progress(progress: dict[str, Any]) -> str:
    pages = progress.get("pages", 0)
    written = progress.get("created", 0) + progress.get("updated", 0)
    text = (
        f"{pages} page(s), {written} record(s) written ({progress.get('created', 0)} new, "
        f"{progress.get('updated', 0)} changed, {progress.get('unchanged', 0)} unchanged), "
        f"{progress.get('deleted', 0)} deleted"
    )
    if progress.get("first_page", 1) > 1:
        text += f"; resumed at page {progress['first_page']} of cycle {progress.get('cycle')}"
    return text


def handle_sync_run(command: Any, options: dict[str, Any]) -> None:
    worker = resolve_worker(options.get("worker"), key=options["sync"], model=Sync, kind="sync")
    sync = sync_row(worker.slug, options["sync"])
    local = options["local"]
    run = start_sync(sync, trigger=runs.LOCAL_TRIGGER if local else "cli", send=not local)
    _fail_if_unsent(run, "sync run")
    command.stdout.write(f"Sync {sync.key} (run #{run.pk}, {sync.mode}) {'here' if local else 'queued'}...")
    shown = {"page": 0}

    def show(current: Run) -> None:
        progress = current.progress or {}
        if progress.get("first_page", 1) > 1 and not shown["page"]:
            command.stdout.write(f"  resuming cycle {progress.get('cycle')} at page {progress['first_page']}")
        for entry in progress.get("recent_pages", []):
            if entry["page"] > shown["page"]:
                shown["page"] = entry["page"]
                command.stdout.write(
                    f"  page {entry['page']} done: {entry['created']} new, {entry['updated']} changed, "
                    f"{entry['unchanged']} unchanged, {entry['deleted']} deleted"
                )
        if current.status == Run.Status.RETRYING:
            command.stderr.write(command.style.WARNING(current.error))

    if local:
        run = _local_loop(lambda: execute_sync(run.pk, local=True, on_progress=show), command)
    else:
        run = _wait(command, run, options, show)
    _fail_unless_succeeded(run)
    duration = run.duration.total_seconds() if run.duration else 0.0
    progress = run.progress or {}
    ended = "cycle complete" if progress.get("cycle_complete") else "cycle not complete (run it again to continue)"
    command.stdout.write(
        command.style.SUCCESS(f"Sync {sync.key} succeeded in {duration:.1f} s: {describe_progress(progress)}; {ended}.")
    )


def _duration(run: Run) -> str:
    if run.duration is not None:
        return f"{run.duration.total_seconds():.1f}s"
    if run.started_at and not run.is_finished:
        return f"{(timezone.now() - run.started_at).total_seconds():.0f}s+"
    return "-"


def handle_runs(command: Any, options: dict[str, Any]) -> None:
    rows = Run.objects.select_related("worker").order_by("-queued_at", "-pk")
    if options.get("worker"):
        rows = rows.filter(worker=resolve_worker(options["worker"]))
    if options.get("kind"):
        rows = rows.filter(kind=options["kind"])
    if options.get("status"):
        rows = rows.filter(status=options["status"])
    if options["limit"] < 1:
        raise CommandError("--limit must be at least 1.")
    rows = list(rows[: options["limit"]])
    if not rows:
        command.stdout.write("No runs yet.")
        return
    command.stdout.write(
        f"{'ID':>6}  {'KIND':<8} {'TARGET':<28} {'STATUS':<10} {'TRIES':>5}  {'QUEUED':<19}  {'DURATION':>9}  ERROR"
    )
    for run in rows:
        target = f"{run.worker.slug}:{run.target}"
        error = (run.error.splitlines() or [""])[0][:80]
        if run.status == Run.Status.RUNNING and not runs.is_alive(run):
            error = "its process is gone; the next delivery or run takes it over"
        elif run.status == Run.Status.RUNNING and run.cancel_requested_at is not None:
            error = f"cancel requested by {run.cancelled_by}"
        command.stdout.write(
            f"{run.pk:>6}  {run.kind:<8} {target[:28]:<28} {run.status:<10} {run.attempts:>5}  "
            f"{timezone.localtime(run.queued_at):%Y-%m-%d %H:%M:%S}  {_duration(run):>9}  {error}"
        )
        if run.code_mismatch:
            command.stdout.write(command.style.WARNING(f"{'':>8}! {run.code_warning}"))


def handle_cancel(command: Any, options: dict[str, Any]) -> None:
    run_id = options["run_id"].lstrip("#")
    if not run_id.isdigit():
        raise CommandError(f"A run ID is a number (as `workers runs` shows it), not {options['run_id']!r}.")
    # RunNotCancellable (unknown or finished run) becomes one line and exit 1, as every WorkersError.
    done = cancel_run(int(run_id), _who("workers runs cancel"))
    command.stdout.write(done.describe())
