"""MCP over Streamable HTTP at /mcp/ on the live ASGI site, with the official SDK's client and API keys."""

from __future__ import annotations

import json

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken

from connections.models import Connection, Run, Tool
from tests.oauth_helpers import connect

from .clients import over_http, text_of
from .conftest import create_key

pytestmark = pytest.mark.celery


def test_tools_are_listed_with_their_schemas_and_annotations(runner_site, mcp_server):
    key = create_key(runner_site, "lister")

    async def body(client):
        return {tool.name: tool for tool in (await client.list_tools()).tools}

    tools = over_http(mcp_server.endpoint, key, body)
    add = Tool.objects.get(worker__slug="runner-test", key="add")
    listed = tools["runner-test__add"]
    assert listed.title == "Add two numbers"
    assert listed.input_schema == add.input_schema
    assert listed.output_schema == add.output_schema
    assert tools["sandbox__getMe"].annotations.read_only_hint is True
    assert not tools["runner-test__add"].annotations.read_only_hint
    assert "sandbox__items__query" in tools  # a query tool per synced database


def test_a_tool_on_the_sandbox_connection_returns_its_structured_result_as_a_run_of_the_key(
    runner_site, celery_worker, mcp_server
):
    connect(runner_site)
    key = create_key(runner_site, "desktop-agent")

    async def body(client):
        return await client.call_tool("sandbox__getMe", {})

    result = over_http(mcp_server.endpoint, key, body)
    admin = get_user_model().objects.get(username="admin")
    expected = {"id": admin.pk, "username": "admin", "email": "admin@example.test"}
    assert not result.is_error, text_of(result)
    assert result.structured_content == expected
    assert json.loads(text_of(result)) == expected
    run = Run.objects.get(target="getMe")
    assert (run.status, run.trigger, run.api_key_name) == ("succeeded", "mcp", "desktop-agent")
    assert run.api_key.name == "desktop-agent"


def test_bad_input_is_a_tool_error_naming_the_field_and_runs_nothing(runner_site, mcp_server):
    key = create_key(runner_site, "typo-agent")

    async def body(client):
        return await client.call_tool("runner-test__add", {"a": "one", "b": 2})

    result = over_http(mcp_server.endpoint, key, body)
    assert result.is_error
    assert 'field "a"' in text_of(result)
    assert not Run.objects.exists()


def test_a_revoked_connection_gives_the_reconnect_message(runner_site, celery_worker, mcp_server):
    connect(runner_site)
    AccessToken.objects.all().delete()
    RefreshToken.objects.all().delete()
    Connection.objects.filter(capability__key="sandboxAuth").update(expires_at=timezone.now())
    key = create_key(runner_site, "agent")

    async def body(client):
        return await client.call_tool("sandbox__getMe", {})

    result = over_http(mcp_server.endpoint, key, body)
    assert result.is_error
    text = text_of(result)
    assert "reconnect sandboxAuth" in text
    capability = Connection.objects.get(capability__key="sandboxAuth").capability
    assert f"{runner_site.url}/admin/connections/oauthcapability/{capability.pk}/change/" in text
    run = Run.objects.get(target="getMe")
    assert run.status == "failed" and run.attempts == 1 and run.api_key_name == "agent"


def test_a_database_query_pages_through_the_25_synced_records(runner_site, celery_worker, mcp_server):
    connect(runner_site)
    synced = runner_site.manage("workers", "sync", "run", "itemsSync", "--worker", "sandbox")
    assert "25 record(s) written" in synced.stdout, synced.stderr
    key = create_key(runner_site, "reader", "--read-only")

    async def body(client):
        pages, cursor = [], None
        while True:
            args = {"limit": 10, **({"cursor": cursor} if cursor else {})}
            result = await client.call_tool("sandbox__items__query", args)
            assert not result.is_error, text_of(result)
            pages.append(result.structured_content)
            cursor = result.structured_content["next_cursor"]
            if cursor is None:
                break
        by_id = await client.call_tool(
            "sandbox__items__query", {"sort": {"property": "Item ID", "direction": "descending"}, "limit": 1}
        )
        schema = await client.read_resource("workers://sandbox/databases/items/schema")
        return pages, by_id, schema

    pages, by_id, schema = over_http(mcp_server.endpoint, key, body)
    assert [len(page["records"]) for page in pages] == [10, 10, 5]
    keys = [record["key"] for page in pages for record in page["records"]]
    assert len(set(keys)) == 25 and all(page["total"] == 25 for page in pages)
    first = pages[0]["records"][0]["properties"]
    assert first["Title"]["type"] == "title" and isinstance(first["Title"]["value"], str)
    ids = [record["properties"]["Item ID"]["value"] for page in pages for record in page["records"]]
    assert by_id.structured_content["records"][0]["properties"]["Item ID"]["value"] == max(ids)  # text order
    assert json.loads(schema.contents[0].text)["properties"]["Status"] == {"type": "select"}


def test_a_key_sees_and_calls_only_its_scope(runner_site, mcp_server):
    only_add = create_key(runner_site, "adder", "--tools", "runner-test:add")
    read_only = create_key(runner_site, "looker", "--read-only")

    async def body(client):
        names = {tool.name for tool in (await client.list_tools()).tools}
        refused = await client.call_tool("runner-test__boom", {})
        return names, refused

    names, refused = over_http(mcp_server.endpoint, only_add, body)
    assert names == {"runner-test__add"}
    assert refused.is_error and "No tool 'runner-test__boom'" in text_of(refused)

    names, refused = over_http(mcp_server.endpoint, read_only, body)
    assert "sandbox__getMe" in names and "sandbox__items__query" in names
    assert "runner-test__add" not in names and "runner-test__boom" not in names
    assert refused.is_error
    assert not Run.objects.exists()


def test_missing_wrong_and_revoked_keys_get_401(runner_site, mcp_server):
    key = create_key(runner_site, "short-lived")
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in [None, "Bearer wmcp_00000000_not-a-key", f"Basic {key}"]:
        answer = requests.post(
            mcp_server.endpoint, json=initialize, headers={**headers, **({"Authorization": auth} if auth else {})}
        )
        assert answer.status_code == 401, answer.text
        assert answer.headers["WWW-Authenticate"].startswith("Bearer ")

    async def body(client):
        return len((await client.list_tools()).tools)

    assert over_http(mcp_server.endpoint, key, body) > 0
    revoked = runner_site.manage("workers", "mcp", "keys", "revoke", "short-lived")
    assert revoked.returncode == 0, revoked.stderr
    answer = requests.post(mcp_server.endpoint, json=initialize, headers={**headers, "Authorization": f"Bearer {key}"})
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error_description"]
    assert key not in answer.text
