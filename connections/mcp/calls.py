"""`tools/call`: a worker's tool as a run (trigger "mcp", attributed to the key), waited for with a bound."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from django.db import close_old_connections, transaction

from ..conf import app_settings
from ..exceptions import RunNotCancellable
from ..models import ApiKey, OAuthCapability, Run
from ..runner import runs
from ..runner.cancel import cancel_run
from ..runner.tools import execute_tool, start_tool
from .catalog import Entry

T = TypeVar("T")
_POLL = 0.2
# A long run shows it is alive at least this often, when the client asked for progress.
_PROGRESS_EVERY = 5.0

Report = Callable[[float, str], Awaitable[None]]


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Database work off the event loop, with the thread's connection handled as Django's request cycle does."""

    def call() -> T:
        close_old_connections()
        try:
            return func(*args)
        finally:
            close_old_connections()

    return await anyio.to_thread.run_sync(call)


def start(entry: Entry, arguments: dict[str, Any], key: ApiKey) -> tuple[Run, threading.Event | None]:
    """Validate and record the run (no run on bad input), attributed to `key`; queue it unless run in process.

    In process, the event is set when the attempts are over, so the wait need not poll the database.
    """
    in_process = app_settings.MCP_IN_PROCESS
    with transaction.atomic():
        run = start_tool(entry.worker, entry.key, arguments, trigger="mcp", send=False)
        Run.objects.filter(pk=run.pk).update(api_key=key, api_key_name=key.name)
        run.api_key_id, run.api_key_name = key.pk, key.name
        if not in_process:
            runs.send(run)
    if not in_process:
        return run, None
    done = threading.Event()
    # Attempts with the same retries and waits a Celery worker makes, in a thread of this process.
    threading.Thread(target=_execute_here, args=(run.pk, done), name=f"mcp-run-{run.pk}", daemon=True).start()
    return run, done


def _execute_here(run_id: int, done: threading.Event) -> None:
    close_old_connections()
    try:
        while True:
            outcome = execute_tool(run_id)  # not local mode: tokens come from the database, as on a worker
            if outcome.retry_in is None or outcome.run.status != Run.Status.RETRYING:
                return
            time.sleep(outcome.retry_in)
            if Run.objects.filter(pk=run_id, status=Run.Status.RETRYING).exists() is False:
                return  # cancelled meanwhile (the next attempt would not run it either)
    finally:
        close_old_connections()
        done.set()


def cancel(run_id: int, key_name: str) -> bool:
    """The client gave up on the call: the run is cancelled as anywhere else (never starts, or told to stop)."""
    try:
        cancel_run(run_id, f"the MCP client (API key {key_name})")
    except RunNotCancellable:
        return False  # it ended meanwhile
    return True


def _snapshot(run_id: int) -> Run:
    return Run.objects.select_related("worker").get(pk=run_id)


async def wait(run_id: int, report: Report | None, timeout: float, done: threading.Event | None = None) -> Run | None:
    """The finished run, or None after `timeout` seconds; progress reported on each change and every few seconds."""
    deadline = time.monotonic() + timeout
    seen: tuple[Any, ...] = ()
    step = step_poll = 0
    last_report = time.monotonic()
    while True:
        run = await in_thread(_snapshot, run_id)
        if run.is_finished:
            return run
        state = (run.status, run.attempts, json.dumps(run.progress, sort_keys=True))
        now = time.monotonic()
        if report is not None and (state != seen or now - last_report >= _PROGRESS_EVERY):
            step += 1
            last_report = now
            await report(step, _describe(run))
        seen = state
        if now > deadline:
            return None
        if done is not None:
            # In process: the row is read again when the attempts are over (or to report progress).
            pause = time.monotonic() + _PROGRESS_EVERY
            while not done.is_set() and time.monotonic() < min(pause, deadline):
                await anyio.sleep(0.002)
            continue
        # Quick at first, for the quick tools most calls are; then no more than 5 reads a second.
        await anyio.sleep(min(_POLL, 0.005 * 2 ** min(step_poll, 10)))
        step_poll += 1


def _describe(run: Run) -> str:
    if run.status == Run.Status.RETRYING:
        return f"Run #{run.pk} is retrying: {(run.error.splitlines() or [''])[0]}"
    if run.status == Run.Status.RUNNING:
        return f"Run #{run.pk} is running (attempt {run.attempts})."
    return f"Run #{run.pk} is {run.status}."


def reconnect_hint(run: Run) -> str:
    """Where to reconnect the capability a failed run needed re-authorized, if that is why it failed."""
    for capability in OAuthCapability.objects.filter(worker=run.worker, is_active=True):
        if f"{capability.key} needs re-authorization" in run.error:
            url = f"{app_settings.PUBLIC_URL}/admin/connections/oauthcapability/{capability.pk}/change/"
            return (
                f" Ask a person with access to the admin to reconnect {capability.key} ({capability.name}) at {url}, "
                "then call the tool again."
            )
    return ""


def outcome(run: Run) -> tuple[bool, Any, str]:
    """(is_error, structured content or None, text) of a finished run."""
    if run.status == Run.Status.SUCCEEDED:
        if run.result_truncated:
            return False, None, f"{run.result}\n[The result was truncated; the whole of it is in run #{run.pk}.]"
        text = json.dumps(run.result, ensure_ascii=False, indent=2)
        return False, run.result, text
    error = run.error or f"Run #{run.pk} {run.status}."
    return True, None, f"Run #{run.pk} failed: {error}{reconnect_hint(run)}"
