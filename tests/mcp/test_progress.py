"""A long tools/call reports progress, and a client that cancels it stops its run from starting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from connections.models import Run
from tests.runner.conftest import wait_until

from .clients import over_http, text_of
from .conftest import McpServer, create_key, start_web, stop_web


def start_without_worker(runner_site, folder: Path, **env: str) -> McpServer:
    """The site on a broker no Celery worker reads: every run it queues stays queued."""
    broker = folder / "broker"
    broker.mkdir()
    return start_web(
        runner_site.url,
        folder / "web.log",
        CELERY_BROKER_DIR=str(broker),
        CELERY_BROKER_URL="filesystem://localhost//",
        **env,
    )


@pytest.fixture
def server_without_worker(runner_site, tmp_path: Path) -> Iterator[McpServer]:
    server = start_without_worker(runner_site, tmp_path)
    yield server
    stop_web(server)


def test_progress_is_reported_and_cancelling_the_call_cancels_the_run(runner_site, server_without_worker):
    key = create_key(runner_site, "impatient")
    messages: list[str] = []

    async def main() -> None:
        got_progress = anyio.Event()

        async def progress(value: float, total: float | None, message: str | None) -> None:
            messages.append(message or "")
            got_progress.set()

        headers = {"Authorization": f"Bearer {key}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(server_without_worker.endpoint, http_client=http)) as client:
                async with anyio.create_task_group() as group:

                    async def call() -> None:
                        await client.call_tool("runner-test__add", {"a": 1, "b": 2}, progress_callback=progress)

                    group.start_soon(call)
                    with anyio.fail_after(30):
                        await got_progress.wait()
                    group.cancel_scope.cancel()
                await anyio.sleep(0.5)

    anyio.run(main)
    run = Run.objects.get(target="add")
    assert messages and f"Run #{run.pk} is queued" in messages[0]

    def cancelled() -> Run | None:
        run.refresh_from_db()
        return run if run.is_finished else None

    wait_until(cancelled, 30, "the cancelled run to be finished")
    assert run.status == "cancelled" and run.attempts == 0
    assert "Cancelled by the MCP client (API key impatient)" in run.error


@pytest.fixture
def in_process_server(runner_site, tmp_path: Path) -> Iterator[McpServer]:
    """WORKERS_MCP_IN_PROCESS on a broker no Celery worker reads: only the web process can run the call."""
    server = start_without_worker(runner_site, tmp_path, WORKERS_MCP_IN_PROCESS="true")
    yield server
    stop_web(server)


def test_in_process_mode_runs_the_call_in_the_web_process(runner_site, in_process_server):
    key = create_key(runner_site, "one-machine")

    async def body(client):
        return await client.call_tool("runner-test__add", {"a": 2, "b": 3})

    result = over_http(in_process_server.endpoint, key, body)
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"sum": 5}
    run = Run.objects.get(target="add")
    assert run.status == "succeeded" and run.api_key_name == "one-machine"
    web_pids = {str(in_process_server.proc.pid), *_children(in_process_server.proc.pid)}
    assert run.owner.rpartition(":")[2] in web_pids


def _children(pid: int) -> set[str]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return set(found.read_text().split()) if found.exists() else set()
