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

pytestmark = pytest.mark.unit

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


def test_messages_published_on_redis_share_one_client(redis_server, monkeypatch):
    """kombu's own transport makes a client object (116 us) for every message: one per channel here."""
    with Connection(redis_server.url, transport=broker.RedisTransport) as conn:
        queue = conn.SimpleQueue("runs")
        queue.put({"run": 0})  # the channel and its pool are set up
        made = _clients_made(monkeypatch)
        for n in range(1, 21):
            queue.put({"run": n})

        assert len(made) == 0
        assert [queue.get(timeout=5).payload["run"] for _ in range(21)] == list(range(21))
        queue.close()


def test_a_publish_after_the_broker_restarted_goes_through(redis_server):
    """The kept client's pooled connection died with the server: the next publish gets a new one."""
    with Connection(redis_server.url, transport=broker.RedisTransport) as conn:
        producer = conn.Producer()
        producer.publish({"run": 1}, routing_key="runs", declare=[conn.SimpleQueue("runs").queue])
        redis_server.stop()
        redis_server.start()  # the same port, nothing kept (no append-only file)

        producer.publish({"run": 2}, routing_key="runs")

    with Connection(redis_server.url) as reader:
        queue = reader.SimpleQueue("runs")
        assert queue.get(timeout=5).payload == {"run": 2}
        queue.close()


def test_the_site_uses_it_for_a_redis_broker(settings):
    from workers_site.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("a redis:// broker only")
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, broker.RedisTransport)
