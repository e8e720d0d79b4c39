"""The admin over real HTTP: a tool's Run form built from its schema, Run now, runs, databases and records."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from connections.models import Record, Run, Sync, SyncedDatabase, Tool
from tests.conftest import ADMIN_PASSWORD, csrf_from

from .conftest import HOOK_SECRET, wait_for_run

pytestmark = pytest.mark.celery


def test_tool_run_form_is_built_from_the_schema_and_shows_the_result(runner_site, celery_worker):
    session = runner_site.admin_session()
    tool = Tool.objects.get(key="add")
    url = f"{runner_site.url}/admin/connections/tool/{tool.pk}/run/"

    page = session.get(url, timeout=10)
    assert page.status_code == 200
    for field in ('name="a"', 'name="b"', 'name="note"', "first", "second"):
        assert field in page.text

    answer = session.post(url, data={"csrfmiddlewaretoken": csrf_from(page.text), "a": "2", "b": "3"}, timeout=10)

    assert answer.status_code == 200 and "/admin/connections/run/" in answer.url
    run = wait_for_run(Run.objects.get(target="add").pk)
    assert run.status == "succeeded" and run.trigger == "admin" and run.input == {"a": 2, "b": 3}
    shown = session.get(answer.url, timeout=10).text
    assert "&quot;sum&quot;: 5" in shown and "adding 2 and 3" in shown


def test_tool_run_form_refuses_bad_input_without_running(runner_site):
    session = runner_site.admin_session()
    url = f"{runner_site.url}/admin/connections/tool/{Tool.objects.get(key='add').pk}/run/"
    page = session.get(url, timeout=10)

    answer = session.post(url, data={"csrfmiddlewaretoken": csrf_from(page.text), "a": "two"}, timeout=10)

    assert answer.status_code == 200 and answer.url == url
    assert "Enter a whole number." in answer.text and "This field is required." in answer.text
    assert not Run.objects.exists()


def test_running_needs_the_run_permission(runner_site):
    user = get_user_model().objects.create_user("viewer", password=ADMIN_PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_tool", "view_sync"]))
    session = runner_site.admin_session("viewer")
    tool = Tool.objects.get(key="add")
    sync = Sync.objects.get(key="pagesSync")

    change = session.get(f"{runner_site.url}/admin/connections/tool/{tool.pk}/change/", timeout=10)
    assert change.status_code == 200 and "/run/" not in change.text
    assert session.get(f"{runner_site.url}/admin/connections/tool/{tool.pk}/run/", timeout=10).status_code == 403
    sync_page = session.get(f"{runner_site.url}/admin/connections/sync/{sync.pk}/change/", timeout=10)
    assert "Run now" not in sync_page.text
    forbidden = session.post(
        f"{runner_site.url}/admin/connections/sync/{sync.pk}/run/",
        data={"csrfmiddlewaretoken": csrf_from(sync_page.text)},
        timeout=10,
    )
    assert forbidden.status_code == 403 and not Run.objects.exists()


def test_sync_run_now_then_records_are_listed_with_their_properties_and_searchable(runner_site, celery_worker):
    session = runner_site.admin_session()
    sync = Sync.objects.get(key="pagesSync")
    page = session.get(f"{runner_site.url}/admin/connections/sync/{sync.pk}/change/", timeout=10)
    assert "Run now" in page.text

    answer = session.post(
        f"{runner_site.url}/admin/connections/sync/{sync.pk}/run/",
        data={"csrfmiddlewaretoken": csrf_from(page.text)},
        timeout=10,
    )

    assert answer.status_code == 200 and "/admin/connections/run/" in answer.url
    assert wait_for_run(Run.objects.get(target="pagesSync").pk).status == "succeeded"
    database = SyncedDatabase.objects.get(worker__slug="runner-test", key="items")
    databases = session.get(f"{runner_site.url}/admin/connections/synceddatabase/", timeout=10).text
    assert f"?database__id__exact={database.pk}" in databases and ">25</a>" in databases
    listing = session.get(
        f"{runner_site.url}/admin/connections/record/?database__id__exact={database.pk}", timeout=10
    ).text
    for column in ("Title", "Item ID", "Status"):
        assert f">{column}<" in listing or f">{column}</a>" in listing
    assert "Item 13" in listing and "25 records" in listing
    # Quoted, one phrase: unquoted, the admin ANDs "Item" and "13" over key and text, so the result
    # would depend on the ids earlier tests used up (Item 8 is id 133 after 125 earlier items).
    found = session.get(f"{runner_site.url}/admin/connections/record/", params={"q": '"Item 13"'}, timeout=10).text
    assert "Item 13" in found and "1 record" in found and "Item 14" not in found
    # A record's page lists its properties in the order the code declared them (stored JSON has
    # sorted keys on SQLite and jsonb's own order on PostgreSQL).
    record = Record.objects.filter(database=database).first()
    shown = session.get(f"{runner_site.url}/admin/connections/record/{record.pk}/change/", timeout=10).text
    headers = [shown.index(f"<tr><th>{name}</th>") for name in ("Title", "Item ID", "Status")]
    assert headers == sorted(headers)
    # So does each row's summary in the list of every database's records.
    everything = session.get(f"{runner_site.url}/admin/connections/record/", timeout=10).text
    assert re.search(r"Title: Item \d+; Item ID: \d+; Status: ", everything)


def test_runs_list_filters_and_search_and_no_secret_on_run_pages(runner_site, celery_worker):
    from connections.runner import start_tool

    leaky = wait_for_run(start_tool("runner-test", "leaky", {}, trigger="test").pk)
    added = wait_for_run(start_tool("runner-test", "add", {"a": 1, "b": 1}, trigger="test").pk)
    session = runner_site.admin_session()

    failed = session.get(f"{runner_site.url}/admin/connections/run/", params={"status__exact": "failed"}, timeout=10)
    assert failed.status_code == 200
    assert f"/admin/connections/run/{leaky.pk}/change/" in failed.text
    assert f"/admin/connections/run/{added.pk}/change/" not in failed.text
    searched = session.get(f"{runner_site.url}/admin/connections/run/", params={"q": "add"}, timeout=10).text
    assert f"/admin/connections/run/{added.pk}/change/" in searched
    assert f"/admin/connections/run/{leaky.pk}/change/" not in searched

    detail = session.get(f"{runner_site.url}/admin/connections/run/{leaky.pk}/change/", timeout=10).text
    assert "provider said no" in detail and "Traceback" in detail
    assert HOOK_SECRET not in detail
