"""Admin lists stay as cheap as the data grows: the same SQL per page at 3 rows and at 300, and
the filters and columns that were made cheaper still show and filter what they did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benchmarks.admin_lists import changelists, fill, fill_workers
from connections.models import (
    OAuthCapability,
    Pacer,
    Record,
    Run,
    SyncedDatabase,
    Webhook,
    WebhookRefusalCount,
    Worker,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, django_user_model) -> Client:
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", None))
    return client


def queries_per_list(client: Client) -> dict[str, int]:
    counts = {}
    for _, url in changelists():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url] = len(queries)
    return counts


def test_every_changelist_makes_as_many_queries_at_300_rows_as_at_3(admin_client):
    fill(3)
    fill_workers(3)
    few = queries_per_list(admin_client)
    fill(297, start=3)
    fill_workers(297, start=3)
    many = queries_per_list(admin_client)
    registered = [model for model in admin.site._registry if model._meta.app_label == "connections"]
    assert len(few) == len(registered)  # every ModelAdmin in connections/admin/
    assert {url: many[url] - few[url] for url in few if many[url] != few[url]} == {}


def test_databases_list_counts_each_databases_records(admin_client):
    worker = Worker.objects.create(slug="w", module="w")
    big, empty = (
        SyncedDatabase.objects.create(worker=worker, key=key, title=key, primary_key="Name") for key in ("big", "none")
    )
    Record.objects.bulk_create(Record(database=big, key=str(i)) for i in range(7))
    page = admin_client.get("/admin/connections/synceddatabase/").content.decode()
    assert f'?database__id__exact={big.pk}">7</a>' in page
    assert f'?database__id__exact={empty.pk}">0</a>' in page
    by_count = admin_client.get("/admin/connections/synceddatabase/?o=3").content.decode()
    assert by_count.index(">0</a>") < by_count.index(">7</a>")  # sorting by the count still works


def test_records_filter_by_database_and_default_order_by_key(admin_client):
    worker = Worker.objects.create(slug="w", module="w")
    one, two = (SyncedDatabase.objects.create(worker=worker, key=k, title=k, primary_key="N") for k in ("one", "two"))
    for key in ("rec-b", "rec-a"):  # created out of order: the list sorts by key, not by id
        Record.objects.create(database=one, key=key)
    Record.objects.create(database=two, key="rec-other")
    page = admin_client.get("/admin/connections/record/").content.decode()
    assert page.index("rec-a") < page.index("rec-b") < page.index("rec-other")
    assert f"?database__id__exact={two.pk}" in page  # the filter offers each database
    filtered = admin_client.get(f"/admin/connections/record/?database__id__exact={two.pk}").content.decode()
    assert "rec-other" in filtered and "rec-a" not in filtered


def test_runs_filter_by_trigger_and_by_date(admin_client):
    worker = Worker.objects.create(slug="w", module="w")
    for trigger in ("cli", "schedule", "from-my-code"):
        Run.objects.create(kind=Run.Kind.TOOL, worker=worker, target=f"t-{trigger}", trigger=trigger)
    old = Run.objects.create(kind=Run.Kind.TOOL, worker=worker, target="t-old", trigger="cli")
    Run.objects.filter(pk=old.pk).update(queued_at=timezone.now() - timedelta(days=40))
    page = admin_client.get("/admin/connections/run/").content.decode()
    assert "?trigger=schedule" in page and "queued_at__gte=" in page
    cli = admin_client.get("/admin/connections/run/?trigger=cli").content.decode()
    assert "t-cli" in cli and "t-old" in cli and "t-schedule" not in cli
    assert "t-from-my-code" in admin_client.get("/admin/connections/run/?trigger=from-my-code").content.decode()
    # An aware time, as the date filter's own links give (a bare date is naive: Django warns).
    since = (timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    recent = admin_client.get("/admin/connections/run/", {"queued_at__gte": since.isoformat()}).content.decode()
    assert "t-cli" in recent and "t-old" not in recent


def test_refusal_counts_filter_by_webhook_and_unknown_paths(admin_client):
    worker = Worker.objects.create(slug="w", module="w")
    Webhook.objects.create(worker=worker, key="hook")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    WebhookRefusalCount.objects.create(scope="w/hook", hour=hour, refused=11)
    WebhookRefusalCount.objects.create(scope="", hour=hour, refused=22)
    page = admin_client.get("/admin/connections/webhookrefusalcount/").content.decode()
    assert "?scope=w%2Fhook" in page and "?scope=" in page
    hook = admin_client.get("/admin/connections/webhookrefusalcount/?scope=w%2Fhook").content.decode()
    assert ">11<" in hook and ">22<" not in hook
    unknown = admin_client.get("/admin/connections/webhookrefusalcount/?scope=").content.decode()
    assert ">22<" in unknown and ">11<" not in unknown


def test_workers_list_names_missing_secrets_and_pacers_list_last_minute(admin_client, settings):
    # The database budget, whose counters live in the row (a Redis broker would put them in Redis).
    settings.WORKERS_PACER_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "filesystem://localhost//"
    worker = Worker.objects.create(slug="w", module="w")
    OAuthCapability.objects.create(
        worker=worker,
        key="auth",
        name="Auth",
        authorization_endpoint="https://example.test/a",
        token_endpoint="https://example.test/t",
        client_secret_ref="CLIENT_SECRET",
    )
    Webhook.objects.create(worker=worker, key="hook", signature={"secret": "HOOK_SECRET"})
    assert "CLIENT_SECRET, HOOK_SECRET" in admin_client.get("/admin/connections/worker/").content.decode()
    now = int(timezone.now().timestamp())
    Pacer.objects.create(
        worker=worker, key="p", allowed_requests=5, interval_ms=1000, recent={str(now): 3, str(now - 1): 4}
    )
    assert '<td class="field-last_minute">7</td>' in admin_client.get("/admin/connections/pacer/").content.decode()


def test_the_records_page_is_read_in_the_index_order_without_sorting_the_table(admin_client):
    """Django appended "-pk" to the (database, sort_key) ordering, and SQLite sorted every record for it."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL sorts the few equal keys incrementally")
    fill(30)
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get("/admin/connections/record/").status_code == 200
    (page,) = [q["sql"] for q in queries if q["sql"].startswith('SELECT "connections_record"."id"')]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {page}")
        plan = " / ".join(row[-1] for row in cursor.fetchall())
    assert "record_natural_order" in plan and "TEMP B-TREE" not in plan, plan


def test_a_filter_by_worker_lists_a_bounded_number_and_still_filters_by_any(admin_client):
    from connections.admin.runner import RelatedChoicesFilter

    workers = Worker.objects.bulk_create(
        Worker(slug=f"w{i:04d}", module="m") for i in range(RelatedChoicesFilter.LIMIT + 50)
    )
    last = workers[-1]
    Pacer.objects.create(worker=workers[0], key="first", allowed_requests=1, interval_ms=1000)
    Pacer.objects.create(worker=last, key="last", allowed_requests=1, interval_ms=1000)
    for url in ("/admin/connections/oauthcapability/", "/admin/connections/pacer/", "/admin/connections/tool/"):
        page = admin_client.get(url).content.decode()
        assert page.count("worker__id__exact=") == RelatedChoicesFilter.LIMIT, url
    filtered = admin_client.get(f"/admin/connections/pacer/?worker__id__exact={last.pk}").content.decode()
    assert ">last<" in filtered and ">first<" not in filtered
