"""Acceptance: callers in three Celery worker processes share one pacer's budget, evenly and fairly; a 429 stops them all."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from connections import tasks
from connections.models import Run
from connections.runner.tools import start_tool
from tests.runner.conftest import wait_for_run

from .conftest import PACER_QUEUE

pytestmark = pytest.mark.celery

CALLERS = 6  # 3 worker processes x 2 threads


def run_callers(api: Any, seconds: float) -> list[Run]:
    """One `hammer` run per caller on the pacer workers' queue, all calling the API from the same moment."""
    start = time.time() + 3  # time for every worker thread to pick its run up
    runs = []
    for number in range(CALLERS):
        data = {"url": api.url, "caller": f"caller-{number}", "start": start, "until": start + seconds}
        run = start_tool("pacer-test", "hammer", data, trigger="test", send=False)
        tasks.run_tool.apply_async(args=[run.pk], task_id=run.task_id, queue=PACER_QUEUE)
        runs.append(run)
    finished = [wait_for_run(run.pk, timeout=seconds + 90) for run in runs]
    for run in finished:
        assert run.status == "succeeded", f"{run.error}\n{run.traceback}"
    # Two threads in each of three processes (the owner is host:pid), not one process doing it all.
    assert len({run.owner for run in finished}) == 3
    return finished


def test_six_callers_in_three_processes_share_ten_requests_a_second(pacer_site, pacer_workers, api):
    runs = run_callers(api, seconds=20)

    times = api.times()
    # The property: the API never sees more than its budget in any one-second window.
    assert api.most_in_any_window(1.0) <= 10
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate >= 9, f"only {rate:.2f} requests a second"
    # Fair order: with the budget shared equally a caller waits CALLERS slots per turn.
    fair = CALLERS / rate
    per_caller = {run.input["caller"]: run.result["waits"] for run in runs}
    for caller, waits in per_caller.items():
        assert statistics.mean(waits) <= 3 * fair, f"{caller} waited {statistics.mean(waits):.2f} s per request"
        assert len(waits) >= len(times) / CALLERS / 3, f"{caller} got {len(waits)} of {len(times)} requests"
    assert sum(len(waits) for waits in per_caller.values()) == len(times)


def test_a_429_with_retry_after_stops_every_caller_of_the_pacer(pacer_site, pacer_workers, api):
    api.throttle_at = 12
    api.retry_after = "2"
    runs = run_callers(api, seconds=6)

    throttled = [t for t, _, status in api.arrivals if status == 429]
    assert len(throttled) == 1
    after = [(t - throttled[0], caller) for t, caller, _ in api.arrivals if t > throttled[0]]
    # A request already on its way when the 429 was answered may still arrive; then nothing for 2 s.
    in_flight = [offset for offset, _ in after if offset < 0.3]
    assert len(in_flight) <= 2
    assert [offset for offset, _ in after if 0.3 <= offset < 2.0] == []
    # ...after which every caller goes on; the throttled one sat out the pause and its retry succeeded.
    resumed = {caller for offset, caller in after if offset >= 2.0}
    assert resumed == {run.input["caller"] for run in runs}
    throttled_caller = next(caller for _, caller, status in api.arrivals if status == 429)
    run = next(run for run in runs if run.input["caller"] == throttled_caller)
    assert max(run.result["waits"]) >= 2 and set(run.result["statuses"]) == {"200"}
