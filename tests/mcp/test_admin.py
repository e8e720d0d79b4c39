"""API keys in the admin over HTTP: created with a scope (the key shown once), revoked; runs filtered by key."""

from __future__ import annotations

import hashlib
import re

import requests

from connections.mcp.keys import authenticate
from connections.models import ApiKey, Run, Worker
from tests.conftest import csrf_from

from .clients import over_http
from .conftest import create_key


def test_a_key_created_in_the_admin_is_shown_once_and_works_then_revoked_it_gets_401(runner_site, mcp_server):
    session = runner_site.admin_session()
    add_url = f"{runner_site.url}/admin/connections/apikey/add/"
    page = session.get(add_url, timeout=10)
    assert page.status_code == 200

    refused = session.post(
        add_url,
        data={"csrfmiddlewaretoken": csrf_from(page.text), "name": "bad", "tools_text": "noSuchTool"},
        timeout=10,
    )
    assert refused.status_code == 200 and "No active tool or database query" in refused.text
    assert not ApiKey.objects.exists()

    created = session.post(
        add_url,
        data={"csrfmiddlewaretoken": csrf_from(page.text), "name": "claude-code", "tools_text": "sandbox__getMe"},
        timeout=10,
    )
    assert created.status_code == 200 and "shown once" in created.text
    assert "no-store" in created.headers["Cache-Control"]
    raw = re.search(r'<code id="api-key">([^<]+)</code>', created.text).group(1)
    key = ApiKey.objects.get(name="claude-code")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest() and key.tools == ["sandbox__getMe"]

    async def body(client):
        return [tool.name for tool in (await client.list_tools()).tools]

    assert over_http(mcp_server.endpoint, raw, body) == ["sandbox__getMe"]
    listing = session.get(f"{runner_site.url}/admin/connections/apikey/", timeout=10).text
    assert key.prefix in listing and raw not in listing
    change = session.get(f"{runner_site.url}/admin/connections/apikey/{key.pk}/change/", timeout=10).text
    assert raw not in change and key.key_hash not in change

    changelist = f"{runner_site.url}/admin/connections/apikey/"
    page = session.get(changelist, timeout=10)
    done = session.post(
        changelist,
        data={"csrfmiddlewaretoken": csrf_from(page.text), "action": "revoke", "_selected_action": [key.pk]},
        timeout=10,
    )
    assert done.status_code == 200 and "Revoked 1 API key." in done.text
    answer = requests.post(
        mcp_server.endpoint,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {raw}", "Accept": "application/json, text/event-stream"},
        timeout=10,
    )
    assert answer.status_code == 401


def test_the_run_list_filters_by_key(runner_site):
    first, second = create_key(runner_site, "first-agent"), create_key(runner_site, "second-agent")
    worker = Worker.objects.get(slug="runner-test")
    for raw, target in [(first, "add"), (second, "boom")]:
        key = authenticate(raw)
        Run.objects.create(kind="tool", worker=worker, target=target, trigger="mcp", api_key=key, api_key_name=key.name)
    session = runner_site.admin_session()
    key = ApiKey.objects.get(name="second-agent")
    page = session.get(f"{runner_site.url}/admin/connections/run/?api_key__id__exact={key.pk}", timeout=10)
    assert page.status_code == 200
    assert "second-agent" in page.text and ">boom<" in page.text and ">add<" not in page.text
    unfiltered = session.get(f"{runner_site.url}/admin/connections/run/", timeout=10).text
    assert "first-agent" in unfiltered  # the filter lists the keys that have runs
