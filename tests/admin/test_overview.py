"""The admin's index answers "is everything healthy?": connections, syncs, failed and waiting runs, refusals."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Connection, OAuthCapability, Run, Sync, WebhookRefusalCount, Worker

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def staff_client(*codenames: str) -> Client:
    user = get_user_model().objects.create_user(f"staff{len(codenames)}", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def failing_connection() -> OAuthCapability:
    cap = OAuthCapability.objects.get(key="sandboxAuth")
    Connection.objects.update_or_create(
        capability=cap,
        defaults={"status": Connection.Status.NEEDS_REAUTH, "last_error": "the refresh token was revoked"},
    )
    return cap


def run(status: str, *, error: str = "", waited: timedelta = timedelta(0), target: str = "getMe") -> Run:
    worker = Worker.objects.get(slug="sandbox")
    now = timezone.now()
    created = Run.objects.create(kind=Run.Kind.TOOL, worker=worker, target=target, status=status, error=error)
    finished = now if status == Run.Status.FAILED else None
    Run.objects.filter(pk=created.pk).update(queued_at=now - waited, finished_at=finished)
    return created


def refusals(scope: str, refused: int) -> None:
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    WebhookRefusalCount.objects.create(scope=scope, hour=hour, refused=refused)


def overview_html(html: str) -> str:
    """The overview part of the index (before the list of models)."""
    start = html.index('id="content-main"')
    end = html.index('class="app-connections', start) if 'class="app-connections' in html else len(html)
    return html[start:end]


def links(html: str) -> list[str]:
    return sorted({href.replace("&amp;", "&") for href in re.findall(r'href="(/admin/[^"]+)"', html)})


def test_the_overview_shows_what_needs_a_look_and_every_link_opens(admin_client):
    cap = failing_connection()
    failed = run(Run.Status.FAILED, error="Boom: the API said 500\nTraceback lines")
    queued = run(Run.Status.QUEUED, waited=timedelta(minutes=7), target="queuedTool")
    refusals("sandbox/unknownHook", 7)

    response = admin_client.get("/admin/")

    assert response.status_code == 200
    page = overview_html(response.content.decode())
    assert "things need a look" in page
    assert f"/admin/connections/oauthcapability/{cap.pk}/change/" in page
    assert "needs reauthorization" in page and "the refresh token was revoked" in page
    assert f"/admin/connections/run/{failed.pk}/change/" in page and "Boom: the API said 500" in page
    assert "Failed runs in the last day: 1" in page
    assert f"/admin/connections/run/{queued.pk}/change/" in page and "waiting for 7\xa0minutes" in page
    assert "Webhook requests refused in the last day: 7" in page and "sandbox/unknownHook" in page
    sync = Sync.objects.get(key="itemsSync")
    assert f"/admin/connections/sync/{sync.pk}/change/" in page and "never run" in page
    found = links(page)
    assert len(found) >= 8
    for url in found:
        assert admin_client.get(url).status_code == 200, url
    # The filtered links show what the overview counted.
    refused_page = admin_client.get(next(u for u in found if "scope__exact=sandbox" in u)).content.decode()
    assert "sandbox/unknownHook" in refused_page


def test_a_healthy_site_says_so_and_the_site_root_leads_to_it(admin_client):
    for cap in OAuthCapability.objects.all():
        Connection.objects.update_or_create(capability=cap, defaults={"status": Connection.Status.CONNECTED})
    response = admin_client.get("/", follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    page = response.content.decode()
    assert "Everything is healthy." in page
    # "View site" leads to `/`, which is the overview: no 404 anywhere.
    assert re.search(r'<a href="/">View site</a>', page)


def test_a_sync_shows_its_last_run_and_when_it_runs_next(admin_client):
    sync = Sync.objects.get(key="itemsSync")
    last = Run.objects.create(kind=Run.Kind.SYNC, worker=sync.worker, target=sync.key, sync=sync, status="succeeded")

    page = overview_html(admin_client.get("/admin/").content.decode())

    row = page[page.index(f"/admin/connections/sync/{sync.pk}/change/") :]
    row = row[: row.index("</tr>")]
    assert f"#{last.pk} succeeded" in row
    assert "UTC (in " in row or "just now" in row or "under a minute" in row  # the next beat start


def test_long_lists_show_the_newest_and_a_see_all_link(admin_client):
    for n in range(13):
        run(Run.Status.FAILED, error=f"failure number {n}")

    page = overview_html(admin_client.get("/admin/").content.decode())

    assert "Failed runs in the last day: 13" in page
    assert page.count(">failure number") == 10
    assert "See all 13" in page
    see_all = re.search(r'href="([^"]+)">See all 13', page).group(1).replace("&amp;", "&")
    assert "13 runs" in admin_client.get(see_all).content.decode()


def test_a_staff_user_sees_only_what_they_may_view(admin_client):
    failing_connection()
    run(Run.Status.FAILED, error="Secret-ish failure text")
    refusals("sandbox/unknownHook", 3)

    nobody = staff_client()
    page = nobody.get("/admin/").content.decode()
    assert "needs reauthorization" not in page
    assert "Secret-ish failure text" not in page
    assert "sandbox/unknownHook" not in page and "itemsSync" not in page
    assert "Everything is healthy" not in page  # nothing to judge from is not "healthy"

    runs_only = staff_client("view_run")
    page = runs_only.get("/admin/").content.decode()
    assert "Secret-ish failure text" in page
    assert "needs reauthorization" not in page and "sandbox/unknownHook" not in page


def _count_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/admin/").status_code == 200
    return len(queries)


def test_the_overview_costs_the_same_queries_at_3_and_at_40_rows(admin_client):
    def add(n: int) -> None:
        for i in range(n):
            run(Run.Status.FAILED, error=f"e{i}")
            run(Run.Status.QUEUED)
            refusals(f"sandbox/hook{Run.objects.count()}", 1)
        sync = Sync.objects.get(key="itemsSync")
        Run.objects.bulk_create(
            [Run(kind=Run.Kind.SYNC, worker=sync.worker, target=sync.key, sync=sync) for _ in range(n)]
        )

    add(3)
    few = _count_queries(admin_client)
    add(37)
    many = _count_queries(admin_client)

    assert few == many


def test_the_overview_decrypts_no_token(admin_client):
    cap = failing_connection()
    # A token the configured key cannot read (written under a lost key): the capability's own page
    # says so, but the overview never needs a token and stays up.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_connection SET access_token = %s WHERE capability_id = %s", ["not-fernet", cap.pk]
        )

    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert "needs reauthorization" in response.content.decode()
