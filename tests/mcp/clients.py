"""The official MCP SDK's client over Streamable HTTP and over stdio, driven from synchronous tests."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import ROOT, subprocess_env

T = TypeVar("T")


def over_http(endpoint: str, key: str, body: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            async with Client(streamable_http_client(endpoint, http_client=http)) as client:
                return await body(client)

    return anyio.run(main)


def over_stdio(
    site_url: str, modules: list[str], key_name: str, body: Callable[[Client], Awaitable[T]], **env: str
) -> T:
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "workers", "mcp", "--key", key_name],
        cwd=str(ROOT),
        env=subprocess_env(site_url, WORKER_MODULES=",".join(modules), **env),
    )

    async def main() -> T:
        async with Client(params) as client:
            return await body(client)

    return anyio.run(main)


def text_of(result: Any) -> str:
    return "\n".join(part.text for part in result.content if getattr(part, "type", "") == "text")
