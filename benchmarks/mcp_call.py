"""MCP `tools/call` of a trivial tool (Streamable HTTP to the ASGI site, run in process) against `workers exec --local`."""

from __future__ import annotations

import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .report import Context

MODULE = "benchmarks.mcp_worker"
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, env: dict[str, str], web_workers: str = "1") -> subprocess.Popen[bytes]:
    """The production web server (gunicorn, as `workers serve` runs it), once `/healthz` answers."""
    import requests

    from connections.cli.serve import web_command

    proc = subprocess.Popen(
        web_command(sys.executable, "127.0.0.1", str(port), web_workers=web_workers),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the web server did not start")


def _mcp_seconds(url: str, key: str, rounds: int, calls: int) -> float:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> list[float]:
        samples = []
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                result = await client.call_tool("bench-mcp__ping", {"n": 1})
                assert result.structured_content == {"pong": 1}, result  # same answer, or nothing is compared
                for _ in range(rounds):
                    start = time.perf_counter()
                    for n in range(calls):
                        await client.call_tool("bench-mcp__ping", {"n": n})
                    samples.append((time.perf_counter() - start) / calls)
        return samples

    return statistics.median(anyio.run(main))


def _exec_seconds(rounds: int, calls: int) -> float:
    from django.core.management import call_command

    def once(n: int) -> None:
        out = io.StringIO()
        call_command("workers", "exec", "ping", "--input", f'{{"n": {n}}}', "--local", stdout=out, stderr=io.StringIO())

    once(1)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for n in range(calls):
            once(n)
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def run(ctx: Context) -> None:
    rounds, calls = ctx.scale(7, 2), ctx.scale(2000, 500)
    from django.test.utils import override_settings

    from connections import registry
    from connections.deploy import deploy
    from connections.mcp.keys import create_key

    calls = max(5, calls // 100)  # a call is a run, milliseconds rather than microseconds
    os.environ["WORKER_MODULES"] = MODULE
    with override_settings(WORKER_MODULES=[MODULE]):
        registry.clear_cache()
        deploy()
        _, key = create_key(f"bench-{os.getpid()}-{time.monotonic_ns()}")
        direct = _exec_seconds(rounds, calls)
    port = _free_port()
    env = {**os.environ, "WORKER_MODULES": MODULE, "WORKERS_MCP_IN_PROCESS": "true", "LOG_LEVEL": "WARNING"}
    server = start_server(port, env)
    try:
        measured = _mcp_seconds(f"http://127.0.0.1:{port}/mcp/", key, rounds, calls)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    ctx.figure(
        "MCP tools/call of a trivial tool over Streamable HTTP (run in process)",
        ratio=measured / direct,
        baseline=f"workers exec --local of it ({direct * 1000:.1f} ms a call)",
        detail=f"{measured * 1000:.1f} ms a call, median of {rounds} x {calls} calls",
    )
