"""Threads for a run's helpers (its heartbeat, its time-limit watchdog), kept for the next run's.

Every run had two threads of its own, started and ended with it: starting them was about 0.6 ms of
a worker's CPU per run, 40% of what a trivial tool run cost it in all. A helper's thread now waits,
once its job is done, for the next one (a minute at most, then it ends). Each job still runs as in
a new thread: in a daemon thread (a process exits without waiting for it), under a name of its own,
in an empty context (no context variable set by an earlier job), its exceptions logged; a thread's
database connection is its own, and jobs that use one close it at their end, as they did.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import threading
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
    global _lock
    _lock = threading.Lock()
    _idle.clear()


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
