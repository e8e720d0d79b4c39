"""Two Celery workers on two host names (a@host1, b@host2) sharing a PostgreSQL database and a broker, under faults.

Each test starts its own servers' faults: the broker stopped, PostgreSQL restarted, a host killed,
the token endpoint down. The ledger the worker code writes (workers_multihost.py) is the witness of
what really ran; the database and the fake provider's request log say the rest.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from tests.oauth.fake_provider import Reply

from .conftest import Cluster, PrivateRedis, RabbitVhost, wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.celery]

HOSTS = ("a@host1", "b@host2")


@pytest.fixture
def redis_broker(fresh: Cluster) -> Iterator[PrivateRedis]:
    broker = PrivateRedis(fresh.folder / f"redis-{time.monotonic_ns()}", persistent=True)
    fresh.broker_url = broker.url
    yield broker
    fresh.stop_processes()
    broker.stop()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_200_runs_after_the_shared_token_expired_refresh_it_once(fresh: Cluster, broker: str) -> None:
    if broker == "redis":
        server = PrivateRedis(fresh.folder / f"redis-{time.monotonic_ns()}")
        fresh.broker_url, stop = server.url, server.stop
    else:
        vhost = RabbitVhost()
        fresh.broker_url, stop = vhost.url, vhost.delete
    try:
        fresh.driver("expired-token", "rt-initial")
        for node in HOSTS:
            fresh.start_worker(node)
        ids = fresh.driver("tools", "200", "0")
        runs = fresh.wait_finished(ids, timeout=300)
        assert Counter(status for status, _, _ in runs.values()) == {"succeeded": 200}
        refreshes = fresh.provider.refresh_requests
        assert [r["refresh_token"] for r in refreshes] == ["rt-initial"], "one refresh at the provider"
        done = fresh.done_per_run()
        assert set(done) == set(ids) and set(done.values()) == {1}, "each run executed exactly once"
        new_token = _digest(fresh.provider.issued[-1]["access_token"])
        assert {line["token"] for line in fresh.events("done")} == {new_token}
        assert {line["node"] for line in fresh.events("done")} == set(HOSTS), "both hosts worked"
    finally:
        fresh.stop_processes()
        stop()


# The broker is down this long; the property (queued and running runs all complete once after)
# does not depend on the length, only on the workers reconnecting, which they retry for ever.
BROKER_OUTAGE = 10.0


def test_broker_stopped_while_runs_are_queued_and_running(fresh: Cluster, redis_broker: PrivateRedis) -> None:
    fresh.driver("expired-token", "rt-initial")
    for node in HOSTS:
        fresh.start_worker(node)
    ids = fresh.driver("tools", "24", "2")
    wait_until(lambda: len(fresh.events("start")) >= 3, 60, "runs to be running")
    redis_broker.stop()
    time.sleep(BROKER_OUTAGE)
    back = time.time()
    redis_broker.start()
    runs = fresh.wait_finished(ids, timeout=240)
    assert Counter(status for status, _, _ in runs.values()) == {"succeeded": len(ids)}, fresh.logs()
    done = fresh.done_per_run()
    assert set(done) == set(ids) and set(done.values()) == {1}, "each run executed exactly once"
    # Both workers reconnected by themselves: each started runs once the broker was back.
    started_after = {line["node"] for line in fresh.events("start") if line["at"] > back}
    assert started_after == set(HOSTS), fresh.logs()


LEASE = 4  # seconds (WORKERS_RUN_LEASE in the workers' and beat's environment; 120 by default)


def test_a_killed_host_s_run_is_taken_over_by_the_other_after_the_lease(
    fresh: Cluster, redis_broker: PrivateRedis
) -> None:
    fresh.driver("expired-token", "rt-initial")
    workers = {node: fresh.start_worker(node, WORKERS_RUN_LEASE=str(LEASE)) for node in HOSTS}
    fresh.start_beat(WORKERS_RUN_LEASE=str(LEASE))  # requeues lost runs (connections.tasks.requeue_lost_runs)
    (run_id,) = fresh.driver("tools", "1", "6")
    first = wait_until(lambda: fresh.events("start"), 60, "the run to start")[0]
    workers[first["node"]].kill_host()
    killed_at = time.time()
    runs = fresh.wait_finished([run_id], timeout=150)
    status, attempts, owner = runs[run_id]
    assert status == "succeeded" and attempts == 2, (runs, fresh.logs())
    (survivor,) = set(HOSTS) - {first["node"]}
    done = fresh.events("done")
    assert [(line["run"], line["node"]) for line in done] == [(run_id, survivor)], "taken over, not duplicated"
    second = fresh.events("start")[-1]
    assert second["node"] == survivor and second["at"] >= killed_at + LEASE - 1, "not before the lease ran out"
    assert owner.startswith(survivor.split("@")[1] + ":"), owner


# "A minute" shortened: the property is that the runs' retries outlast the outage, whatever its
# length; these settings make the retries span at least 13 s (1, 2, then 3 s, halved by jitter at
# worst, ten times) against a 10 s outage, as the defaults (2 s doubling to 600 s, 5 retries:
# at least 31 s, typically 62 s) span a real minute.
TOKEN_OUTAGE = 10.0
RETRIES = {"WORKERS_RETRY_BACKOFF": "1", "WORKERS_RETRY_BACKOFF_MAX": "3", "WORKERS_TASK_MAX_RETRIES": "10"}


def _health(admin: requests.Session, fresh: Cluster) -> str:
    """The status badge of the one capability on the admin's capabilities page."""
    page = admin.get(f"{fresh.web_url}/admin/connections/oauthcapability/", timeout=10)
    assert page.status_code == 200, page.status_code
    (label,) = re.findall(r'border-radius:10px;white-space:nowrap">([^<]+)</span>', page.text)
    return label


def test_token_endpoint_down_runs_retry_and_succeed_with_the_same_refresh_token(
    fresh: Cluster, redis_broker: PrivateRedis
) -> None:
    fresh.driver("expired-token", "rt-initial")
    fresh.provider.down = Reply(status=503, body='{"error": "temporarily_unavailable"}')
    outage_ends = time.monotonic() + TOKEN_OUTAGE
    for node in HOSTS:
        fresh.start_worker(node, **RETRIES)
    ids = fresh.driver("tools", "6", "0")
    admin = fresh.admin_session()
    wait_until(lambda: len(fresh.provider.refresh_requests) >= 2, 60, "refreshes to be tried")
    assert _health(admin, fresh) == "refresh failing"
    time.sleep(max(0.0, outage_ends - time.monotonic()))
    assert not fresh.events("done"), "no run got past access_token() while the provider was down"
    fresh.provider.down = None
    runs = fresh.wait_finished(ids, timeout=120)
    assert Counter(status for status, _, _ in runs.values()) == {"succeeded": len(ids)}, fresh.logs()
    assert any(attempts > 1 for _, attempts, _ in runs.values()), "the runs retried"
    refreshes = fresh.provider.refresh_requests
    assert len(refreshes) >= 3 and {r["refresh_token"] for r in refreshes} == {"rt-initial"}
    assert len(fresh.provider.issued) == 1, "one successful refresh"
    done = fresh.done_per_run()
    assert set(done) == set(ids) and set(done.values()) == {1}
    assert _health(admin, fresh) == "connected"


def test_postgresql_restarted_during_a_sync_resumes_at_the_right_page(
    fresh: Cluster, redis_broker: PrivateRedis
) -> None:
    from .workers_multihost import SYNC_PAGES

    fresh.pg.sql("DELETE FROM connections_record")
    fresh.pg.sql("UPDATE connections_sync SET state = NULL, pages_done = 0, cycle_in_progress = false")
    for node in HOSTS:
        fresh.start_worker(node, WORKERS_RUN_LEASE=str(LEASE), MULTIHOST_PAGE_SECONDS="1")
    fresh.start_beat(WORKERS_RUN_LEASE=str(LEASE))
    first = fresh.driver("sync")
    wait_until(lambda: len(fresh.events("page")) >= 3, 60, "the sync's third page")
    fresh.pg.pg_ctl("restart")
    ids = [first]
    deadline = time.monotonic() + 180
    while True:  # a failed run is started again, as its schedule or a person would
        runs = fresh.wait_finished(ids, timeout=max(1, deadline - time.monotonic()))
        complete = fresh.pg.sql("SELECT cycle_in_progress, pages_done FROM connections_sync WHERE key = 'pages'")
        if complete == [(False, SYNC_PAGES)]:
            break
        assert len(ids) < 4, (runs, complete, fresh.logs())
        ids.append(fresh.driver("sync"))
    keys = [row[0] for row in fresh.pg.sql("SELECT key FROM connections_record ORDER BY key")]
    assert sorted(keys) == sorted(f"{page}-{i}" for page in range(1, SYNC_PAGES + 1) for i in range(10))
    fetched = [line["page"] for line in fresh.events("page")]
    # Each page fetched in order; the one being written when the database went away once more at most.
    assert sorted(set(fetched)) == list(range(1, SYNC_PAGES + 1)) and len(fetched) <= SYNC_PAGES + 1, fetched
    assert fetched == sorted(fetched), fetched
    created = fresh.pg.sql(
        "SELECT coalesce(sum((progress->>'created')::int), 0), coalesce(sum((progress->>'updated')::int), 0) "
        "FROM connections_run WHERE id = ANY(%s)",
        ids,
    )
    assert created == [(SYNC_PAGES * 10, 0)], "no record written twice"


def test_postgresql_restarted_during_a_long_tool_run_it_is_neither_taken_over_nor_lost(
    fresh: Cluster, redis_broker: PrivateRedis
) -> None:
    fresh.driver("expired-token", "rt-initial")
    for node in HOSTS:
        fresh.start_worker(node, WORKERS_RUN_LEASE=str(LEASE))
    (run_id,) = fresh.driver("tools", "1", str(4 * LEASE))
    (first,) = wait_until(lambda: fresh.events("start"), 60, "the run to start")
    time.sleep(1)
    fresh.pg.pg_ctl("restart")
    # Twice the lease later, with the code still running: beat's lost-run task, sent now rather
    # than at its next minute, must find the run alive.
    time.sleep(2 * LEASE)
    assert len(fresh.events("done")) == 0, "the test needs the run still running here"
    fresh.run("-m", "celery", "-A", "workers_site", "call", "connections.tasks.requeue_lost_runs")
    runs = fresh.wait_finished([run_id], timeout=90)
    status, attempts, _ = runs[run_id]
    # Its heartbeat went on after the restart, so the other host did not take a live run over;
    # and its outcome was recorded, so nobody had to run it again.
    assert [(line["run"], line["node"]) for line in fresh.events("start")] == [(run_id, first["node"])], fresh.logs()
    assert [(line["run"], line["node"]) for line in fresh.events("done")] == [(run_id, first["node"])]
    assert (status, attempts) == ("succeeded", 1), (runs, fresh.logs())
