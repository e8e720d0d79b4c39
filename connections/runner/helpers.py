"""Threads for a run's helpers (its heartbeat, its time-limit watchdog), kept for the next run's.

Every run had two threads of its own, started and ended with it: starting them was about 0.6 ms of
a worker's CPU per run, 40% of what a trivial tool run cost it in all. A helper's thread now waits,
once its job is done, for the next one (a minute at most, then it ends). Each job still runs as in
a new thread: in a daemon thread (a process exits without waiting for it), under a name of its own,
in an empty context (no context variable set by an earlier job), its exceptions logged; a thread's
database connection is its own, and jobs that use one close it at their end, as they did.

A heartbeat's first beat and a watchdog's deadline are seconds away, and most runs end sooner:
`later` hands such a job to one timer thread per process, which starts it at its time unless it
was cancelled first. A run that ends before its helpers are due starts no job (handing a helper
its job and ending it took four thread switches a job); the timer thread is at most told of a
sooner time to wait for. Written here rather than taken from the standard library: a
`threading.Timer` is a thread of its own per job, and `sched` does not wake for a job added sooner
than the one it waits for.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("connections.runner")

# How long a thread with no job waits for one before it ends.
IDLE_FOR = 60.0


class Job:
    """A helper's job; `join` waits for its end, as Thread.join does."""

    def __init__(self, target: Callable[[], object], name: str) -> None:
        self.target, self.name = target, name
        self.finished = threading.Event()

    def join(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)


_lock = threading.Lock()
_idle: list[queue.SimpleQueue[Job]] = []  # the inbox of each thread waiting for a job


def _forget_after_fork() -> None:
    # A forked child (a Celery pool process) has none of its parent's threads: a job handed to
    # one would never run, and the lock may have been held by one of them at the fork.
    global _lock, _timers_changed, _timer_thread, _cancelled
    _lock = threading.Lock()
    _idle.clear()
    _timers_changed = threading.Condition()
    _timer_thread = None
    _timers.clear()  # the parent's runs, which are not this process's
    _cancelled = 0


os.register_at_fork(after_in_child=_forget_after_fork)


def _serve(inbox: queue.SimpleQueue[Job]) -> None:
    thread = threading.current_thread()
    try:
        while True:
            try:
                job = inbox.get(timeout=IDLE_FOR)
            except queue.Empty:
                with _lock:
                    if inbox in _idle:
                        _idle.remove(inbox)
                        return
                job = inbox.get()  # handed one as the wait ended
            thread.name = job.name
            try:
                contextvars.Context().run(job.target)
            except SystemExit:
                pass  # ends the job, as it would have ended a thread of its own
            except BaseException:
                logger.exception("A run's helper thread (%s) failed", job.name)
            finally:
                thread.name = "run-helper (idle)"
                finished = job.finished
                job.target = _done  # not the run, its log and its watch kept while this thread waits
                del job
                with _lock:
                    _idle.append(inbox)
                finished.set()
    finally:
        # However this thread ends, no job may be handed to it any more: it would never run.
        with _lock:
            if inbox in _idle:
                _idle.remove(inbox)


def _done() -> None:
    pass


def start(target: Callable[[], object], name: str) -> Job:
    """Run `target` in a helper thread: one waiting for a job if there is one, else a new daemon thread."""
    job = Job(target, name)
    with _lock:
        inbox = _idle.pop() if _idle else None
    if inbox is None:
        inbox = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(inbox,), name=name, daemon=True).start()
    inbox.put(job)
    return job


class Later:
    """A job due at a time (see `later`); `cancel` keeps it from starting."""

    def __init__(self, due: float, target: Callable[[], object], name: str) -> None:
        self.due, self.target, self.name = due, target, name
        self.cancelled = False
        self.job: Job | None = None

    def cancel(self) -> Job | None:
        """Keep the job from starting; the job, when it has started already (to join it)."""
        global _cancelled
        with _timers_changed:
            if not self.cancelled and self.job is None:
                self.cancelled = True
                self.target = _done  # not the run, its log and its watch, while the entry waits its turn
                _cancelled += 1
                _drop_cancelled()
            return self.job


_timers: list[tuple[float, int, Later]] = []  # a heap, soonest first
_timers_changed = threading.Condition()
_timer_thread: threading.Thread | None = None
_order = itertools.count()
_cancelled = 0  # cancelled entries still in the heap
# How long a job whose thread could not be started (the process at its thread limit) waits to try again.
RETRY_START_AFTER = 1.0


def _drop_cancelled() -> None:
    # From the top: runs end in about the order they began, so a cancelled job is usually the
    # soonest. Runs that overlap (threads of a web process) leave some further down: once they are
    # half the heap, it is rebuilt without them.
    global _cancelled
    while _timers and _timers[0][2].cancelled:
        heapq.heappop(_timers)
        _cancelled -= 1
    if _cancelled > 16 and _cancelled * 2 > len(_timers):
        _timers[:] = [entry for entry in _timers if not entry[2].cancelled]
        heapq.heapify(_timers)
        _cancelled = 0


def later(delay: float, target: Callable[[], object], name: str) -> Later:
    """Run `target` in a helper thread (as `start` does) `delay` seconds from now, unless cancelled first."""
    global _timer_thread
    pending = Later(time.monotonic() + delay, target, name)
    with _timers_changed:
        if _timer_thread is None or not _timer_thread.is_alive():
            _timer_thread = threading.Thread(target=_keep_time, name="run-timers", daemon=True)
            _timer_thread.start()
        heapq.heappush(_timers, (pending.due, next(_order), pending))
        if _timers[0][2] is pending:
            _timers_changed.notify()  # sooner than what the timer thread waits for
    return pending


def _keep_time() -> None:
    changed = _timers_changed  # this process's: a fork gives the child a new one, and no thread
    while True:
        with changed:
            _drop_cancelled()
            if not _timers:
                changed.wait()
                continue
            wait = _timers[0][0] - time.monotonic()
            if wait > 0:
                changed.wait(wait)
                continue
            pending = heapq.heappop(_timers)[2]
            try:
                # Under the lock: a `cancel` from now on is given the job to join.
                pending.job = start(pending.target, pending.name)
            except RuntimeError:
                # No thread could be started (the process is at its limit): tried again shortly, since
                # a run with no heartbeat would be taken over while it runs, and one with no watchdog
                # never stopped.
                logger.exception("A run's helper (%s) could not be started; trying again", pending.name)
                pending.due = time.monotonic() + RETRY_START_AFTER
                heapq.heappush(_timers, (pending.due, next(_order), pending))
