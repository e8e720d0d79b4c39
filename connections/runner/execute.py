"""One attempt at a run, whatever its kind: claim, run the code, record its outcome."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from .. import jsondata, registry
from ..conf import app_settings
from ..exceptions import InvalidJSONError, RunCancelled, WorkerDefinitionError
from ..logging import Collected, collecting, redact
from ..models import Run, Sync
from ..runtime import running_locally
from ..source import fingerprint, worker_files
from . import helpers, limits, runs
from .capture import BoundedText, capture_output, describe_error, encode_result, known_secrets, known_values
from .retry import next_retry

logger = logging.getLogger("connections.runner")


class Skipped(Exception):
    """Raised by a run's body when it must not run now (another run of the same sync holds the lock)."""


def _combined_log(run: Run, attempt_log: str) -> str:
    if run.attempts > 1 and run.log:
        text = f"{run.log}--- attempt {run.attempts} ---\n{attempt_log}"
    else:
        text = attempt_log
    limit = app_settings.RUN_LOG_LIMIT
    if len(text) > limit:
        text = "[earlier output not kept]\n" + text[-limit:]
    return text


def _scrub_result(value: Any, secrets: list[str]) -> Any:
    if not secrets or value is None:
        return value
    text = json.dumps(value, ensure_ascii=False)
    cleaned = redact(text, secrets)
    return value if cleaned == text else json.loads(cleaned)


def perform(
    run_id: int,
    body: Callable[[Run, runs.RunContext], Any],
    *,
    local: bool = False,
    echo: bool = False,
) -> runs.Outcome:
    """Run `body` for the run unless it is finished or alive elsewhere; record result, error or retry.

    Errors never escape: they become the run's error and traceback (credentials blanked), and
    `Outcome.retry_in` says when a passing failure deserves another attempt. A tool's code runs
    under its time limit (a sync's pages under theirs, see syncs.py); past the hard limit this
    process records the run failed and ends (see limits.py).
    """
    if local:
        runs.in_foreground(run_id)
    run = runs.reconnecting(lambda: runs.claim(run_id))
    if run is None:
        # Raises Run.DoesNotExist for a message that outlived its run (deleted, or another database).
        return runs.Outcome(Run.objects.get(pk=run_id), executed=False)
    # The worker's secrets and tokens as the claim read them; with every value handed to the code
    # meanwhile (a secret read, a token decrypted or refreshed: each passes through `remember`),
    # they are what the outcome is blanked of, with no read after the code. A run taken over from a
    # dead process was claimed without them: read after the code, as before.
    known = None if run.claimed_ciphertexts is None else known_values(run.claimed_ciphertexts)
    with collecting() as handed:
        return _attempt(run, body, local, echo, known, handed)


def _attempt(
    run: Run,
    body: Callable[[Run, runs.RunContext], Any],
    local: bool,
    echo: bool,
    known: list[str] | None,
    handed: Collected,
) -> runs.Outcome:
    context = runs.RunContext(run.pk, run.kind, run.worker.slug, run.target, run.attempts, local)
    result: Any = None
    error: BaseException | None = None
    ended = threading.Event()
    code_thread = threading.current_thread()
    with running_locally(local):
        with (
            capture_output(echo=echo) as log,
            limits.watching(lambda message, where: _hard_stop(run, log, local, message, where)) as watch,
        ):

            def on_cancel(by: str) -> None:
                # Asked politely first: RunCancelled where the code is. Code that goes on anyway is
                # ended after the grace period, as at a hard time limit, when it runs in a process of
                # its own (a pool child, the CLI); a thread of the web process is left to its end.
                watch.interrupt(by)
                if code_thread is threading.main_thread():
                    helpers.start(lambda: _stop_after_grace(run, log, local, by, ended), f"run-{run.pk}-cancel")

            with runs.heartbeat(run, overdue=watch.overdue, on_cancel=on_cancel):
                limit = limits.for_run(run)
                try:
                    with limits.enforce(limit) if limit is not None else nullcontext():
                        result = body(run, context)
                except Exception as exc:
                    error = exc
                finally:
                    ended.set()
    # The code may have run long enough for the connection to die: the outcome is recorded anyway.
    return runs.reconnecting(lambda: _record(run, result, error, log, _blanked(run, known, handed)))


def _blanked(run: Run, known: list[str] | None, handed: Collected) -> list[str]:
    """What the run's outcome is blanked of: the claim's values and those handed to the code since."""
    if known is None or handed.overflowed:
        # Taken over from a dead process (nothing read at the claim), or too much to gather: read now.
        known = known_secrets(run.worker.slug)
    return [*known, *handed.difference(known)]  # redact() puts the longest first itself


def _stop_after_grace(run: Run, log: BoundedText, local: bool, by: str, ended: threading.Event) -> None:
    if ended.wait(app_settings.TIME_LIMIT_GRACE):
        return
    message = f"{runs.cancelled_message(by, ran=True)} The code did not stop within {app_settings.TIME_LIMIT_GRACE:g} s"
    _hard_stop(run, log, local, message + " and was ended.", "", status=Run.Status.CANCELLED)


def _hard_stop(
    run: Run, log: BoundedText, local: bool, message: str, where: str, status: str = Run.Status.FAILED
) -> None:
    """From the watchdog thread: the code went on past its hard limit. Record the run, free its sync, end here.

    Ending the process is the only way to stop a thread in Python. A Celery pool child is replaced
    (its message comes back once, and the finished run is not executed again); the CLI exits 1.
    """
    try:
        secrets = known_secrets(run.worker.slug)
        runs.finish(
            run,
            status,
            error=redact(message, secrets),
            traceback=redact(where, secrets),
            log=redact(_combined_log(run, log.getvalue()), secrets),
        )
        Sync.objects.filter(running_run_id=run.pk).update(running_run=None)
    except Exception:
        logger.exception("Could not record run #%s as failed at its hard time limit", run.pk)
    finally:
        connection.close()
        if local:  # one line for the person at the terminal, the same as every other failed run gives
            sys.__stderr__.write(f"CommandError: Run #{run.pk} {status}: {message}\n")
            sys.__stderr__.flush()
        else:
            logger.error("Run #%s failed: %s Ending process %s.", run.pk, message, os.getpid())
        os._exit(1)


def record_killed(run_id: int) -> None:
    """The Celery parent killed the pool child at the task's own time limit: the run failed, its sync is free."""
    run = Run.objects.select_related("worker").filter(pk=run_id, status=Run.Status.RUNNING).first()
    if run is None:
        return
    limit = limits.for_run(run)
    message = limit.killed_message() if limit is not None else "The run was killed at its Celery time limit."
    runs.finish(run, Run.Status.FAILED, error=message)
    Sync.objects.filter(running_run_id=run.pk).update(running_run=None)


def code_fingerprints(run: Run) -> dict[str, Any]:
    """The fingerprints of the worker code this process imported and of the code deployed (read at claim).

    When they differ, the files on disk tell why: changed since the import (this process must restart)
    or the same (the deploy is behind them). Empty when this process could not import the worker.
    """
    try:
        definition = registry.load_workers().get(run.worker.slug)
    except WorkerDefinitionError:
        return {}
    if definition is None:
        return {}
    fields: dict[str, Any] = {
        "code_fingerprint": definition.code_fingerprint,
        "deployed_fingerprint": run.worker.code_fingerprint,
    }
    if run.worker.code_fingerprint and definition.code_fingerprint != run.worker.code_fingerprint:
        # Read only on a mismatch: a run on the deployed code costs no file access.
        fields["code_outdated"] = fingerprint(worker_files([definition.module])) != definition.code_fingerprint
    return fields


def _record(run: Run, result: Any, error: BaseException | None, log: BoundedText, secrets: list[str]) -> runs.Outcome:
    fields: dict[str, Any] = {"log": redact(_combined_log(run, log.getvalue()), secrets)}
    code = code_fingerprints(run)
    fields.update(code)
    for name, value in code.items():
        setattr(run, name, value)  # finish() stores them with the outcome
    if run.code_mismatch:
        # In the worker's log too: whoever watches it learns which process to restart.
        logger.warning("Run #%s: %s", run.pk, run.code_warning)
    if error is None:
        try:
            # Every kind's result, webhooks' included: too deep would end in a RecursionError below.
            value, truncated = encode_result(_scrub_result(jsondata.clean(result, what="The result"), secrets))
        except InvalidJSONError as exc:
            error = exc
        except RecursionError:
            error = InvalidJSONError("The result is nested too deep to store.")
        except (TypeError, ValueError) as exc:
            error = TypeError(f"the result is not JSON-serialisable: {exc}")
        else:
            runs.finish(
                run, Run.Status.SUCCEEDED, result=value, result_truncated=truncated, error="", traceback="", **fields
            )
            return runs.Outcome(run)
    if isinstance(error, RunCancelled) or (error is not None and runs.cancelled_by(run.pk) is not None):
        # Whatever the code raised once told to stop (the exception itself, or what it turned into).
        by = runs.cancelled_by(run.pk) or "someone"
        runs.finish(run, Run.Status.CANCELLED, error=redact(runs.cancelled_message(by, ran=True), secrets), **fields)
        return runs.Outcome(run)
    if isinstance(error, Skipped):
        runs.finish(run, Run.Status.SKIPPED, error=str(error), **fields)
        return runs.Outcome(run)
    message, trace = describe_error(error)
    fields["traceback"] = redact(trace, secrets)
    delay = next_retry(error, run.attempts)
    if delay is None:
        runs.finish(run, Run.Status.FAILED, error=redact(message, secrets), **fields)
        return runs.Outcome(run)
    note = f"{message} (attempt {run.attempts} of {app_settings.TASK_MAX_RETRIES + 1}; retrying in {delay:.1f} s)"
    due = timezone.now() + timedelta(seconds=delay)
    runs.finish(run, Run.Status.RETRYING, error=redact(note, secrets), due_at=due, **fields)
    return runs.Outcome(run, retry_in=delay)
