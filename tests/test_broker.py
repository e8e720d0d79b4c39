"""The embedded broker's transport: a worker never takes a message that is still being written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
import redis
from kombu import Connection
from kombu.transport import filesystem

from connections import broker
from tests.conftest import PrivateRedis

TRANSPORT = "connections.broker:Transport"


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Any]:
    folders = {
        "data_folder_in": tmp_path / "queue",
        "data_folder_out": tmp_path / "queue",
        "control_folder": tmp_path / "control",
    }
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    with Connection(
        "filesystem://", transport=TRANSPORT, transport_options={k: str(v) for k, v in folders.items()}
    ) as conn:
        yield conn.default_channel


@pytest.mark.unit
def test_a_message_being_written_is_not_taken_half_written(channel, monkeypatch):
    writing, finish = threading.Event(), threading.Event()

    def slow_dumps(value: Any) -> str:
        writing.set()
        finish.wait(10)  # the producer is between creating its file and writing it
        return real_dumps(value)

    real_dumps = broker.dumps
    # Both modules' names: the same test shows kombu's own transport hand out an empty file here.
    monkeypatch.setattr(broker, "dumps", slow_dumps)
    monkeypatch.setattr(filesystem, "dumps", slow_dumps)
    producer = threading.Thread(target=channel._put, args=("runs", {"body": "the run's id"}))
    producer.start()
    assert writing.wait(10)

    with pytest.raises(Empty):
        channel._get("runs")  # kombu's transport: JSONDecodeError, and the message gone

    finish.set()
    producer.join(10)
    assert channel._get("runs") == {"body": "the run's id"}


@pytest.mark.unit
def test_the_site_uses_it_for_the_embedded_broker(settings):
    from workers_site.celery import app

    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the embedded broker only")
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, broker.Transport)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    yield server
    server.stop()


def _clients_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for every redis-py client object made from now on."""
    made: list[int] = []
    real_init = redis.Redis.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting_init)
    return made


def _publish_twenty(url: str, transport: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[int]]:
    """(client objects made while 20 messages were published, the messages' numbers as delivered)."""
    with Connection(url, transport=transport) as conn:
        queue = conn.SimpleQueue("runs")
        queue.put({"run": 0})  # the channel and its pool are set up
        made = _clients_made(monkeypatch)
        for n in range(1, 21):
            queue.put({"run": n})
        monkeypatch.undo()
        delivered = [queue.get(timeout=5).payload["run"] for _ in range(21)]
        queue.close()
    return len(made), delivered


def test_messages_published_on_redis_share_one_client(redis_server, monkeypatch):
    """kombu's own transport makes a client object (116 us) for every message; this one none after the first."""
    made, delivered = _publish_twenty(redis_server.url, broker.RedisTransport, monkeypatch)
    stock_made, _ = _publish_twenty(redis_server.url, None, monkeypatch)

    assert (made, delivered) == (0, list(range(21)))
    assert stock_made >= 20  # the count sees kombu's clients: without the fix this test fails


def test_a_channel_whose_pool_was_replaced_publishes_through_the_new_one(redis_server):
    """kombu replaces a channel's pool (after a fork, on close): the kept client must not outlive it."""
    with Connection(redis_server.url, transport=broker.RedisTransport) as conn:
        queue = conn.SimpleQueue("runs")
        queue.put({"run": 1})
        channel = conn.default_channel
        before = channel._create_client()
        channel._disconnect_pools()  # what _after_fork and close() do

        queue.put({"run": 2})

        after = channel._create_client()
        assert after is not before and after.connection_pool is channel.pool is not before.connection_pool
        assert [queue.get(timeout=5).payload["run"] for _ in range(2)] == [1, 2]
        queue.close()


def test_the_site_uses_it_for_a_redis_broker(settings):
    from workers_site.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("a redis:// broker only")
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, broker.RedisTransport)
