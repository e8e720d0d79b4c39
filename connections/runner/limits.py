"""Time limits on workers' code: a soft limit the code meets as an exception, a hard one that ends its process.

Soft: SIGALRM, in the main thread (a Celery prefork pool child, `--local` in the CLI), raises
TimeLimitExceeded wherever the code is, a sleep or a socket read included; the run fails with a
message saying which limit and how to raise it, and a sync's lock is released by the usual
`finally`. Code that swallows it (`except Exception: ...` in a loop) meets the hard limit
WORKERS_TIME_LIMIT_GRACE seconds later: a watchdog thread records the run failed, releases its
sync and ends the process (a pool child is replaced by Celery; the CLI exits with one line). Code
that holds the interpreter lock so no thread can act is killed by the Celery parent at the task's
own `time_limit` (see `celery_options`), and the task's `on_failure` records the run failed.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType
from typing import Any

from django.db import connections as db_connections

from ..conf import app_settings
from ..exceptions import RunCancelled, TimeLimitExceeded
from ..models import Run, Tool
from . import helpers

HardStop = Callable[[str, str], None]


def _seconds(value: float) -> str:
    return f"{value:g} s"


@dataclass(frozen=True)
class TimeLimit:
    """The soft limit of one call of workers' code, what it is called and how a person raises it."""

    seconds: float
    grace: float
    what: str  # "Tool add", "Page 3 of sync pagesSync"
    how_to_raise: str

    @property
    def hard(self) -> float:
        return self.seconds + self.grace

    def soft_message(self) -> str:
        return f"{self.what} ran past its time limit of {_seconds(self.seconds)} and was stopped; {self.how_to_raise}."

    def hard_message(self) -> str:
        return (
            f"{self.what} did not stop at its time limit of {_seconds(self.seconds)} and was killed at the hard "
            f"limit ({_seconds(self.hard)}); {self.how_to_raise}."
        )

    def killed_message(self) -> str:
        """When even the hard limit could not act (the code held the interpreter) and Celery killed it."""
        return (
            f"{self.what} did not stop at its time limit of {_seconds(self.seconds)} and was killed by Celery "
            f"after {_seconds(self.hard + self.grace)}; {self.how_to_raise}."
        )


def for_tool(key: str, time_limit: float | None) -> TimeLimit:
    """The limit of tool `key`: its own `time_limit` as deployed, else WORKERS_TOOL_TIME_LIMIT."""
    if time_limit:
        how = f'raise time_limit in @worker.tool("{key}", ...) and run `python manage.py workers deploy`'
    else:
        how = (
            f'raise WORKERS_TOOL_TIME_LIMIT, or give this tool its own: @worker.tool("{key}", ..., '
            "time_limit=SECONDS), then `python manage.py workers deploy`"
        )
    return TimeLimit(time_limit or app_settings.TOOL_TIME_LIMIT, app_settings.TIME_LIMIT_GRACE, f"Tool {key}", how)


def for_page(key: str, time_limit: float | None, page: int) -> TimeLimit:
    """The limit of one page of sync `key`: its own `time_limit` as deployed, else WORKERS_SYNC_PAGE_TIME_LIMIT."""
    if time_limit:
        how = f'raise time_limit in @worker.sync("{key}", ...) and run `python manage.py workers deploy`'
    else:
        how = (
            f'raise WORKERS_SYNC_PAGE_TIME_LIMIT, or give this sync its own: @worker.sync("{key}", ..., '
            "time_limit=SECONDS), then `python manage.py workers deploy`"
        )
    what = f"Page {page} of sync {key}"
    return TimeLimit(time_limit or app_settings.SYNC_PAGE_TIME_LIMIT, app_settings.TIME_LIMIT_GRACE, what, how)


def for_webhook(key: str) -> TimeLimit:
    """The limit of webhook `key`'s handler: WORKERS_WEBHOOK_TIME_LIMIT (outside callers start these runs)."""
    how = "raise WORKERS_WEBHOOK_TIME_LIMIT"
    return TimeLimit(app_settings.WEBHOOK_TIME_LIMIT, app_settings.TIME_LIMIT_GRACE, f"Webhook handler {key}", how)


def for_run(run: Run) -> TimeLimit | None:
    """The limit around a run's whole code: a tool's or a webhook handler's. A sync bounds each of its pages."""
    if run.kind == Run.Kind.TOOL:
        if Run.tool.is_cached(run):  # claimed or created with it: no query
            time_limit = run.tool.time_limit if run.tool is not None else None
        else:
            time_limit = Tool.objects.filter(pk=run.tool_id).values_list("time_limit", flat=True).first()
        return for_tool(run.target, time_limit)
    if run.kind == Run.Kind.WEBHOOK:
        return for_webhook(run.target)
    return None


def celery_options(run: Run) -> dict[str, Any]:
    """The task's own hard limit, one grace period after ours: the last resort when no thread of ours can run."""
    limit = for_run(run)
    if limit is None:
        return {}
    return {"time_limit": limit.hard + limit.grace}  # keep in step with TimeLimit.killed_message


def _where(thread_id: int) -> str:
    frame: FrameType | None = sys._current_frames().get(thread_id)
    if frame is None:
        return ""
    return "Where the code was when it was killed:\n" + "".join(traceback.format_stack(frame))


class Watch:
    """One run's time limits: what `enforce` reports to, and what the heartbeat asks before it beats.

    It also carries a cancellation into the code (`interrupt`): the same alarm that meets a soft
    limit meets a cancelled run, so a sleep or a socket read is interrupted too.
    """

    def __init__(self, hard_stop: HardStop) -> None:
        self.hard_stop = hard_stop
        self._hard_deadline: float | None = None
        self._stop_reason: str | None = None
        self._target: int | None = None
        self._main = False
        # Held while code enters or leaves `enforce` and while `interrupt` decides how to reach it:
        # an alarm must never fire once the code's handler is gone (SIGALRM's default ends the process).
        self._lock = threading.Lock()

    def overdue(self) -> bool:
        """True once the code under a limit is past its hard limit: a stuck run must stop looking alive."""
        deadline = self._hard_deadline
        return deadline is not None and time.monotonic() > deadline

    def interrupt(self, reason: str) -> None:
        """From another thread: raise RunCancelled(reason) in the code, now if it runs, else when it next would."""
        with self._lock:
            self._stop_reason = reason
            if self._target is None:
                return  # between two pages of a sync: the next `enforce` raises it
            if self._main:
                signal.setitimer(signal.ITIMER_REAL, 0.001)
            else:
                # No signal reaches another thread: the exception is raised at its next Python line
                # (not inside a blocking call; the code meets it when that call returns).
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), ctypes.py_object(RunCancelled))

    @contextmanager
    def enforce(self, limit: TimeLimit) -> Iterator[None]:
        main = threading.current_thread() is threading.main_thread()
        target = threading.get_ident()
        done = threading.Event()
        started = time.monotonic()

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            if done.is_set():
                return
            if self._stop_reason is not None:
                raise RunCancelled(self._stop_reason)
            raise TimeLimitExceeded(limit.soft_message())

        def watchdog() -> None:
            # Started at the deadline by helpers.later, unless the code ended first; `done` tells which won.
            if done.wait(max(0.0, started + limit.hard - time.monotonic())):
                return
            self.hard_stop(limit.hard_message(), _where(target))

        previous: Any = None
        with self._lock:
            if self._stop_reason is not None:
                raise RunCancelled(self._stop_reason)
            self._hard_deadline = started + limit.hard
            if main:  # signals reach the main thread only; elsewhere only the hard limit applies
                previous = signal.signal(signal.SIGALRM, on_alarm)
                signal.setitimer(signal.ITIMER_REAL, limit.seconds)
            self._target, self._main = target, main
        pending = helpers.later(limit.hard, watchdog, "time-limit")
        try:
            yield
        except (TimeLimitExceeded, RunCancelled):
            # Raised wherever the code was, possibly inside a database query: psycopg then keeps the
            # connection busy, and recording the run would fail on it. A new one is opened on demand.
            for conn in db_connections.all(initialized_only=True):
                if not conn.in_atomic_block:  # an outer transaction is its owner's to end
                    conn.close()
            raise
        finally:
            pending.cancel()
            with self._lock:
                done.set()
                self._hard_deadline = None
                self._target = None
                if main:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


_current: ContextVar[Watch | None] = ContextVar("workers_time_limits", default=None)


@contextmanager
def watching(hard_stop: HardStop) -> Iterator[Watch]:
    """Make `hard_stop` what `enforce` calls at a hard limit while a run's code runs."""
    watch = Watch(hard_stop)
    token = _current.set(watch)
    try:
        yield watch
    finally:
        _current.reset(token)


def enforce(limit: TimeLimit) -> Any:
    """Bound the code run inside by `limit`: `with limits.enforce(limits.for_page(...)): page = func(...)`."""
    watch = _current.get()
    if watch is None:
        raise RuntimeError("limits.enforce() is used outside a run (runner.execute.perform sets one up)")
    return watch.enforce(limit)
