"""The budget itself, on the database and on Redis: even spacing, try_acquire, timeouts, pauses, the count."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from django.db import connection

from connections import pacers
from connections.exceptions import PacerTimeout, PacerUnavailable, WorkerDefinitionError
from connections.sdk import Pacer, Worker
from connections.sdk.worker import local_mode, oauth_env_name

from .workers_pacers import api_auth


def declared(key: str, allowed: int, interval_ms: int) -> Pacer:
    """A pacer of the deployed `pacer-test` worker (its row exists), with a fresh budget."""
    pacer = Worker("pacer-test").pacer(key, allowed_requests=allowed, interval_ms=interval_ms)
    pacers.reset(pacer)
    return pacer


def go_times(pacer: Pacer, threads: int, each: int) -> list[float]:
    """Callers in several threads, each waiting `each` times; when each wait returned."""
    times: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        try:
            for _ in range(each):
                pacer.wait()
                with lock:
                    times.append(time.monotonic())
        finally:
            connection.close()

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return sorted(times)


def test_waits_are_evenly_spaced_with_no_burst_when_an_interval_starts(pacer_site, backend):
    pacer = declared("spaced", allowed=10, interval_ms=500)

    times = go_times(pacer, threads=3, each=7)

    assert len(times) == 21
    # Never more than 10 in any 0.5 s, and not 10 at once when the budget is fresh: spaced out.
    # These are the times the threads noted after wait() returned, and a thread descheduled in
    # between notes late: 10% slack for that (a burst would show as ~0, not 0.45). The HTTP
    # acceptance test in test_pacers.py holds the strict bound on arrival times at the server.
    assert all(times[i + 10] - times[i] >= 0.45 for i in range(len(times) - 10))
    assert times[9] - times[0] >= 9 * 0.05 * 0.9
    assert pacers.requests_last_minute("pacer-test", "spaced") == 21


def test_try_acquire_takes_only_a_free_slot_and_wait_gives_up_past_its_timeout(pacer_site, backend):
    pacer = declared("slow", allowed=1, interval_ms=60_000)

    assert pacer.try_acquire() is True
    assert pacer.try_acquire() is False
    started = time.monotonic()
    with pytest.raises(PacerTimeout, match="more than the 0.2 s this caller may wait"):
        pacer.wait(timeout=0.2)
    assert time.monotonic() - started < 5  # it did not sleep a minute to find out
    assert pacers.requests_last_minute("pacer-test", "slow") == 1


def test_a_pause_holds_a_caller_whose_slot_was_already_reserved(pacer_site, backend):
    pacer = declared("paused", allowed=5, interval_ms=1000)
    pacer.wait()  # the next slot is now 0.2 s away
    waited: list[float] = []
    queued = threading.Thread(target=lambda: (waited.append(pacer.wait()), connection.close()))
    queued.start()
    time.sleep(0.05)  # the thread has reserved its slot and sleeps until it

    pacer.pause(1.5)
    queued.join(timeout=30)

    assert waited and waited[0] >= 1.4


def test_capability_session_waits_its_turn_and_a_429_pauses_the_pacer(pacer_site, backend, api, monkeypatch):
    pacer = declared("sessioned", allowed=20, interval_ms=1000)
    monkeypatch.setenv(oauth_env_name(api_auth.name), "pulled-token-0123456789")
    api.throttle_at = 3
    api.retry_after = "1"
    token = local_mode.set(True)  # a --local run with a pulled token: no provider needed
    try:
        session = api_auth.session(pacer=pacer)
        statuses = [session.get(api.url, timeout=10).status_code for _ in range(5)]
    finally:
        local_mode.reset(token)

    assert statuses == [200] * 5  # the throttled request was sent again after the pause
    times = [t for t, _, _ in api.arrivals]
    assert len(times) == 6 and times[3] - times[2] >= 1.0
    assert pacers.requests_last_minute("pacer-test", "sessioned") == 6  # each one, the retry too, waited its turn
    assert set(api.authorizations) == {"Bearer pulled-token-0123456789"}


def test_an_unreachable_budget_is_a_clear_error_and_a_local_run_paces_alone(pacer_site, settings, capsys):
    settings.WORKERS_PACER_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    pacer = Worker("pacer-test").pacer("unreachable", allowed_requests=50, interval_ms=1000)

    with pytest.raises(PacerUnavailable, match="cannot be reached") as caught:
        pacer.wait()
    assert "redis://" not in str(caught.value)  # a URL may carry a password
    token = local_mode.set(True)
    try:
        times = [pacer.wait() for _ in range(3)]
    finally:
        local_mode.reset(token)

    assert sum(times) >= 2 * 0.02 * 0.9
    assert "budget of its own process only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allowed_requests": 0}, "allowed_requests must be a whole number"),
        ({"interval_ms": 1.5}, "interval_ms must be a whole number"),
        ({"allowed_requests": True}, "allowed_requests must be a whole number"),
    ],
)
def test_bad_declarations_are_definition_errors(options, message):
    worker = Worker("pacer-decl")
    with pytest.raises(WorkerDefinitionError, match=message):
        worker.pacer("jira", **options)


def test_pacer_keys_are_checked_and_unique():
    worker = Worker("pacer-decl")
    jira = worker.pacer("jira")
    assert (jira.allowed_requests, jira.interval_ms) == (10, 1000)
    with pytest.raises(WorkerDefinitionError, match="duplicate pacer"):
        worker.pacer("jira")
    with pytest.raises(WorkerDefinitionError, match="pacer key must start with a letter"):
        worker.pacer("1jira")


def test_a_request_held_up_after_its_go_still_counts_from_when_it_left(pacer_site, backend, api):
    pacer = declared("heldUp", allowed=10, interval_ms=1000)
    session = requests.Session()

    def held_up() -> requests.Response:
        time.sleep(0.15)  # a loaded machine: the caller got its turn but ran late
        return session.get(api.url, timeout=10)

    asked = time.time()  # before its go (a free budget: at once); the API server's clock is this one
    pacers.send_paced(pacer, held_up)
    for _ in range(10):
        pacers.send_paced(pacer, lambda: session.get(api.url, timeout=10))

    times = api.times()
    # Never 11 in one interval at the API, counted from when the first arrived: its time moves from
    # its go to its response, by at most _DONE_CAP_US. On a machine loaded enough to hold it up past
    # that (seen in CI: 0.25 s), it counts from its go plus the cap.
    counted_from = min(times[0], asked + pacers._DONE_CAP_US / 1e6)
    assert len(times) == 11 and times[10] - counted_from >= 1.0
