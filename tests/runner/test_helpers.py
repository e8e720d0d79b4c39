"""A run's helper threads are kept for the next run's, and each job still runs as in a thread of its own."""

from __future__ import annotations

import contextvars
import os
import threading

from connections.runner import helpers

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


def _where(seen: list[tuple[int, str, str, bool]]) -> None:
    thread = threading.current_thread()
    seen.append((threading.get_ident(), thread.name, marker.get(), thread.daemon))
    marker.set("left by an earlier job")


def test_a_second_job_runs_in_the_first_ones_thread_under_its_own_name_and_context(monkeypatch):
    monkeypatch.setattr(helpers, "_idle", [])  # no thread left idle by an earlier test's run
    seen: list[tuple[int, str, str, bool]] = []

    assert helpers.start(lambda: _where(seen), "run-1-heartbeat").join(5)
    assert helpers.start(lambda: _where(seen), "run-2-heartbeat").join(5)

    (first, name1, marker1, daemon1), (second, name2, marker2, daemon2) = seen
    assert first == second  # no thread started for the second run (0.3 ms of CPU each)
    assert first != threading.get_ident() and daemon1 and daemon2
    assert (name1, name2) == ("run-1-heartbeat", "run-2-heartbeat")
    assert marker1 == marker2 == "unset"  # a context variable set by one job is not the next job's


def test_jobs_at_once_each_get_a_thread():
    release = threading.Event()
    idents: list[int] = []

    def held() -> None:
        idents.append(threading.get_ident())
        release.wait(5)

    jobs = [helpers.start(held, f"job-{n}") for n in range(3)]
    release.set()

    assert all(job.join(5) for job in jobs)
    assert len(set(idents)) == 3


def test_a_failing_job_leaves_its_thread_serving():
    def fails() -> None:
        raise RuntimeError("boom")

    assert helpers.start(fails, "failing").join(5)
    ran = threading.Event()
    assert helpers.start(ran.set, "after").join(5) and ran.is_set()


def test_a_forked_child_starts_threads_of_its_own():
    # A Celery pool process is forked from a parent that may have had idle helpers: their threads
    # are not in the child, and a job handed to one would never run (no heartbeat, no watchdog).
    assert helpers.start(lambda: None, "in-parent").join(5)  # one idle helper in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one byte if its job ran within 5 s; never back into pytest
        ran = False
        try:
            ran = helpers.start(lambda: os.write(write, b"1"), "in-child").join(5)
        finally:
            os._exit(0 if ran else 1)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and os.waitstatus_to_exitcode(status) == 0
    os.close(read)


def test_a_job_due_later_runs_at_its_time_and_one_cancelled_first_never_runs():
    due, cancelled = threading.Event(), threading.Event()

    helpers.later(0.05, due.set, "run-1-heartbeat")
    helpers.later(0.05, cancelled.set, "run-2-heartbeat").cancel()

    assert due.wait(5)
    assert not cancelled.wait(0.3)


def test_cancelling_a_job_already_started_hands_it_back_to_join():
    started, release = threading.Event(), threading.Event()

    def held() -> None:
        started.set()
        release.wait(5)

    pending = helpers.later(0, held, "run-1-heartbeat")
    assert started.wait(5)
    job = pending.cancel()
    assert job is not None and not job.join(0.05)  # still running: the caller can wait for its end
    release.set()
    assert job.join(5)


def test_jobs_cancelled_out_of_order_do_not_stay_in_memory():
    # Overlapping runs (threads of a web process) end in any order: entries under a live one go too.
    live = helpers.later(300, lambda: None, "run-0-watchdog")
    for n in range(100):
        helpers.later(600, lambda: None, f"run-{n}-watchdog").cancel()

    assert len(helpers._timers) <= 34  # the live one, and fewer cancelled ones than twice that bound
    live.cancel()


def test_a_forked_child_keeps_time_with_a_timer_of_its_own():
    helpers.later(0, lambda: None, "in-parent")  # the parent's timer thread exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one byte if its job ran within 5 s; never back into pytest
        ran = threading.Event()
        try:
            helpers.later(0.01, lambda: (os.write(write, b"1"), ran.set()), "in-child")
            ran.wait(5)
        finally:
            os._exit(0 if ran.is_set() else 1)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and os.waitstatus_to_exitcode(status) == 0
    os.close(read)
