"""`workers mcp --key NAME` as the subprocess a local client (Claude Desktop, Claude Code) launches."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from mcp.shared.exceptions import MCPError

from connections.models import Run
from tests.oauth_helpers import connect

from .clients import over_stdio, text_of
from .conftest import create_key

pytestmark = pytest.mark.celery


def test_stdio_lists_and_calls_tools_as_the_named_key(runner_site, celery_worker):
    connect(runner_site)
    create_key(runner_site, "claude-desktop", "--workers", "sandbox")

    async def body(client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        me = await client.call_tool("sandbox__getMe", {})
        refused = await client.call_tool("runner-test__add", {"a": 1, "b": 2})
        return tools, me, refused

    tools, me, refused = over_stdio(runner_site.url, runner_site.modules, "claude-desktop", body)
    assert set(tools) == {"sandbox__getMe", "sandbox__items__query"}  # the key's scope: one worker
    assert tools["sandbox__getMe"].annotations.read_only_hint is True
    assert not me.is_error, text_of(me)
    assert me.structured_content["username"] == get_user_model().objects.get(username="admin").username
    assert refused.is_error
    run = Run.objects.get()
    assert (run.target, run.trigger, run.api_key_name) == ("getMe", "mcp", "claude-desktop")


def test_stdio_with_a_revoked_key_refuses_the_client(runner_site):
    create_key(runner_site, "gone")
    assert runner_site.manage("workers", "mcp", "keys", "revoke", "gone").returncode == 0

    async def body(client):
        return await client.list_tools()

    with pytest.raises((MCPError, OSError, ExceptionGroup, RuntimeError)):
        over_stdio(runner_site.url, runner_site.modules, "gone", body)
    done = runner_site.manage("workers", "mcp", "--key", "gone")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["CommandError: The API key 'gone' was revoked."]


def test_a_call_the_broker_does_not_take_is_an_error_at_once_and_never_runs(runner_site, dead_broker):
    create_key(runner_site, "agent", "--workers", "runner-test")

    async def body(client):
        return await client.call_tool("runner-test__add", {"a": 1, "b": 2})

    result = over_stdio(runner_site.url, runner_site.modules, "agent", body, CELERY_BROKER_URL=dead_broker)

    assert result.is_error
    run = Run.objects.get()
    assert text_of(result) == (
        f"Run #{run.pk} could not be queued (the task queue is unavailable), so nothing ran. Try again later."
    )  # the broker's address and error are the site's business, not the client's
    # Cancelled: a client that calls again gets one run, not this one too once the broker is back.
    assert run.status == Run.Status.CANCELLED and run.attempts == 0 and run.api_key_name == "agent"
