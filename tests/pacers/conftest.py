"""Fixtures for pacers: the recording API, the pacer test worker deployed, each budget backend, three Celery workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test.utils import override_settings

from tests.conftest import TEST_WORKER_MODULES, CeleryWorker, Site, start_celery_worker
from tests.runner.conftest import RunnerSite

from .api_server import RecordingAPI

PACER_MODULES = [*settings.WORKER_MODULES, *TEST_WORKER_MODULES, "tests.pacers.workers_pacers"]
PACER_QUEUE = "pacers"
# A Redis of our own for the Redis budget when the suite does not run on a Redis broker.
TEST_REDIS_URL = os.environ.get("TEST_PACER_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def api() -> Iterator[RecordingAPI]:
    server = RecordingAPI()
    yield server
    server.close()


@pytest.fixture
def pacer_site(site: Site, tmp_path: Path) -> Iterator[RunnerSite]:
    """The live site with the `pacer-test` worker deployed, its pacer's budget reset."""
    from connections import pacers, registry
    from connections.deploy import deploy

    with override_settings(WORKER_MODULES=PACER_MODULES):
        registry.clear_cache()
        deploy()
        pacers.reset(registry.get_worker("pacer-test").pacers["api"])
        yield RunnerSite(site.url, tmp_path, PACER_MODULES)
    registry.clear_cache()


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["database", "redis"])
def backend(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each budget in turn, in this process: the database row, then Redis."""
    if request.param == "redis":
        broker = settings.CELERY_BROKER_URL
        url = settings.WORKERS_PACER_REDIS_URL or (broker if broker.startswith("redis") else TEST_REDIS_URL)
        if not redis_reachable(url):
            pytest.skip(f"no Redis at {url}")
        settings.WORKERS_PACER_REDIS_URL = url
    else:
        settings.WORKERS_PACER_REDIS_URL = ""
        # Only this process reads it here: with no Redis broker the budget is the database's.
        settings.CELERY_BROKER_URL = "filesystem://"
    return request.param


@pytest.fixture(scope="module")
def pacer_workers(
    site_url: str, django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[CeleryWorker]]:
    """Three Celery worker processes, two threads each, on a queue of their own."""
    from workers_site.celery import app

    folder = tmp_path_factory.mktemp("pacer-workers")
    with django_db_blocker.unblock():
        with app.connection_for_write() as conn:
            conn.default_channel.queue_declare(PACER_QUEUE)
            conn.default_channel.queue_purge(PACER_QUEUE)

        def start(number: int) -> CeleryWorker:
            return start_celery_worker(
                site_url,
                folder / f"worker-{number}.log",
                concurrency=2,
                pool="threads",
                queues=PACER_QUEUE,
                WORKER_MODULES=",".join(PACER_MODULES),
            )

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(start, number) for number in range(3)]
        workers = [future.result() for future in futures if future.exception() is None]
        if len(workers) < 3:
            for worker in workers:
                worker.stop()
            raise next(f.exception() for f in futures if f.exception() is not None)  # type: ignore[misc]
    yield workers
    for worker in workers:
        worker.stop()
