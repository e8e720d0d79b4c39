"""Admin pages a newcomer met: the client id, the worker page, record order, the runs' errors, a failed Connect."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model

from connections.deploy import deploy
from connections.models import OAuthCapability, Record, Run, Sync, SyncedDatabase, Worker
from connections.oauth.flow import start_authorization
from connections.runner.syncs import Page, apply_page
from connections.secrets import set_secrets

pytestmark = pytest.mark.django_db


def test_the_client_id_shows_the_secrets_name(admin_client):
    cap = OAuthCapability.objects.get(key="sandboxAuth")

    page = admin_client.get(f"/admin/connections/oauthcapability/{cap.pk}/change/").content.decode()

    assert "SANDBOX_CLIENT_ID (a secret of worker sandbox" in page
    assert '{"secret"' not in unescape(page)


def test_the_worker_page_has_no_save_or_delete(admin_client):
    worker = Worker.objects.get(slug="sandbox")
    url = f"/admin/connections/worker/{worker.pk}/change/"

    page = admin_client.get(url).content.decode()

    assert worker.module in page  # the page is still there, as a view
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "deletelink" not in page
    assert admin_client.post(url, {"slug": "renamed"}).status_code == 403
    assert admin_client.get(f"/admin/connections/worker/{worker.pk}/delete/").status_code == 403
    assert Worker.objects.filter(slug="sandbox").exists()


def _keys_in_order(html: str, keys: list[str]) -> list[str]:
    # The first column of each result row holds the record's key.
    cells = re.findall(r'<th class="field-[a-z_]+"><a href="[^"]+">([^<]+)</a>', html)
    return [cell for cell in cells if cell in keys]


def test_records_sort_numbers_as_numbers(admin_client):
    database = SyncedDatabase.objects.create(
        worker=Worker.objects.get(slug="sandbox"),
        key="numbers",
        title="Numbers",
        primary_key="Name",
        properties={"Name": {"type": "title"}, "Votes": {"type": "number"}},
    )
    page = Page()
    for key, votes in (("10", 9), ("2", 100), ("1", 25), ("100", 3)):
        page.upserts[key] = {"Name": {"type": "title", "value": f"n{key}"}, "Votes": {"type": "number", "value": votes}}
    sync = Sync.objects.create(worker=database.worker, key="numbersSync", database=database, cycle=1)
    apply_page(sync, page, 1)
    keys = ["1", "2", "10", "100"]
    url = f"/admin/connections/record/?database__id__exact={database.pk}"

    by_default = admin_client.get(url).content.decode()
    assert _keys_in_order(by_default, keys) == ["1", "2", "10", "100"]

    # Column 2 is Votes: ascending by value, not by its text ("100" < "25" < "3" < "9").
    by_votes = admin_client.get(url + "&o=2").content.decode()
    assert _keys_in_order(by_votes, keys) == ["100", "10", "1", "2"]
    by_votes_desc = admin_client.get(url + "&o=-2").content.decode()
    assert _keys_in_order(by_votes_desc, keys) == ["2", "1", "10", "100"]


def test_a_record_saved_alone_sorts_by_number_too():
    deploy()
    database = SyncedDatabase.objects.get(key="items")
    for key in ("item 10", "item 9"):
        Record.objects.create(database=database, key=key)
    assert list(Record.objects.filter(database=database).values_list("key", flat=True)) == ["item 9", "item 10"]


def test_the_runs_list_shows_the_whole_error(admin_client):
    worker = Worker.objects.get(slug="sandbox")
    first_line = "RuntimeError: " + "the provider answered something long " * 6 + "END-OF-FIRST-LINE"
    error = first_line + "\nsecond line with DETAIL-ON-LINE-TWO"
    Run.objects.create(kind=Run.Kind.TOOL, worker=worker, target="getMe", status=Run.Status.FAILED, error=error)

    page = unescape(admin_client.get("/admin/connections/run/").content.decode())

    assert first_line in page  # not cut at 100 characters: the browser ellipsizes it to the column
    title = re.search(r'title="(RuntimeError[^"]*)"', page)
    assert title and "DETAIL-ON-LINE-TWO" in title.group(1)


def test_a_failed_connect_page_offers_to_try_again(admin_client):
    cap = OAuthCapability.objects.get(key="sandboxAuth")
    user = get_user_model().objects.get(username="root")
    set_secrets("sandbox", {"SANDBOX_CLIENT_ID": "client-for-tests", "SANDBOX_CLIENT_SECRET": "secret-for-tests"})
    # A real attempt started from this admin session; the provider then says "denied".
    session = admin_client.session
    started = start_authorization(cap, origin="admin", user=user, session=session)
    session.save()
    state = re.search(r"state=([^&]+)", started.url).group(1)

    response = admin_client.get("/oauth/callback/", {"state": state, "error": "access_denied"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Connection failed" in page
    connect = f"/admin/connections/oauthcapability/{cap.pk}/connect/"
    assert f'<form method="post" action="{connect}">' in page and "csrfmiddlewaretoken" in page
    assert "Try again" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    again = admin_client.post(connect, {"csrfmiddlewaretoken": token})
    assert again.status_code == 302 and "/sandbox/" in again["Location"]  # off to the provider again


def test_a_failed_connect_page_with_an_unknown_state_links_back_to_the_admin(client):
    response = client.get("/oauth/callback/", {"state": "not-a-state", "code": "x"})

    assert response.status_code == 400
    page = response.content.decode()
    assert re.search(r'<a href="/admin/connections/oauthcapability/">Try again</a>', page)
    assert "<form" not in page  # nobody known to be allowed to connect: no button that would 403


def test_the_sync_page_still_lists_its_runs(admin_client):
    sync = Sync.objects.get(key="itemsSync")
    assert admin_client.get(f"/admin/connections/sync/{sync.pk}/change/").status_code == 200
