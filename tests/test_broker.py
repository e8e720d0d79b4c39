"""The embedded broker's transport: a worker never takes a message that is still being written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import filesystem

from connections import broker

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
