"""Every changelist's rows, rendered once a page per column (connections/admin/rows.py), are the
page Django's own result list renders: the same columns, links, icons, classes and escaping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import Client
from django.utils import timezone

from benchmarks.admin_lists import changelists, fill, fill_workers
from connections.admin.runner import ScalableAdmin
from connections.models import Run, Tool, Webhook, WebhookEvent, Worker

pytestmark = pytest.mark.django_db

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def admin_client(client: Client, django_user_model) -> Client:
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", None))
    return client


def _awkward_rows() -> Worker:
    """Rows whose cells need escaping, an empty value, a missing relation or a boolean off."""
    worker = Worker.objects.create(slug="w-odd", module='odd<&>"module', is_active=False)
    Tool.objects.create(worker=worker, key="k<i>", title='<b>"bold"</b> & more', is_active=False)
    hook = Webhook.objects.create(worker=worker, key="h&k")
    WebhookEvent.objects.create(webhook=hook, path="/webhooks/<x>/", method="POST", body_size=0, reason="   ")
    now = timezone.now()
    Run.objects.create(kind=Run.Kind.TOOL, worker=worker, target="   ", trigger="admin", status=Run.Status.FAILED,
                       error="<script>alert(1)</script>\nmore", queued_at=now, finished_at=now + timedelta(seconds=1))  # fmt: skip
    Run.objects.create(kind=Run.Kind.TOOL, worker=worker, target="t", trigger="cli", status=Run.Status.RUNNING,
                       cancel_requested_at=now, cancelled_by="<someone>")  # fmt: skip
    return worker


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    if response.status_code != 200:  # a filter this list has not: Django redirects to ?e=1
        return f"{response.status_code} {response.get('Location')}"
    return CSRF.sub("", response.content.decode())


def test_every_changelist_renders_the_rows_django_renders(admin_client, monkeypatch):
    fill(30)
    fill_workers(5)
    worker = _awkward_rows()
    queries = ["", "?o=-2.3", "?q=1", f"?worker__id__exact={worker.pk}&o=1", "?_popup=1", "?is_active__exact=0"]
    models = {f"/{model._meta.model_name}/": model_admin for model, model_admin in admin.site._registry.items()}
    checked = 0
    for _, url in changelists():
        model_admin = next(ma for suffix, ma in models.items() if url.endswith(suffix))
        for query in queries:
            ours = _page(admin_client, url + query)
            with monkeypatch.context() as patch:
                patch.setattr(model_admin, "change_list_template", None)  # Django's admin/change_list.html
                theirs = _page(admin_client, url + query)
            assert ours == theirs, f"{url}{query}"
            checked += isinstance(model_admin, ScalableAdmin) and 'id="result_list"' in ours
    assert checked >= 12 * 4  # lists with rows compared, not only empty pages and redirects


def test_a_page_of_rows_looks_up_the_boolean_icons_once(admin_client, monkeypatch):
    """Django resolves each boolean cell's icon through the static storage; a page does it three times."""
    fill(30)
    from django.contrib.admin.templatetags import admin_list

    calls = []
    real = admin_list.static
    monkeypatch.setattr(admin_list, "static", lambda path: calls.append(path) or real(path))
    assert admin_client.get("/admin/connections/tool/").status_code == 200
    assert len(calls) == 3  # yes, no, unknown: not one a row


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns"])
@pytest.mark.parametrize("language", ["en-us", "fr", "de"])
def test_datetime_cells_read_as_djangos(zone, language):
    """Midnight, noon, on the hour, across a DST change and a year end, in three languages."""
    from datetime import UTC, datetime

    from django.contrib.admin.utils import display_for_field
    from django.utils import translation

    from connections.admin.rows import DateTimeText

    field = Run._meta.get_field("queued_at")
    start = datetime(2025, 3, 29, 22, 0, tzinfo=UTC)
    values = [start + timedelta(minutes=37 * i) for i in range(200)]
    values += [datetime(2025, 12, 31, 23, 0, 59, 5, tzinfo=UTC), datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    values += [datetime(2026, 1, 2, hour, 0, tzinfo=UTC) for hour in range(24)]  # midnight and noon somewhere
    with timezone.override(zone), translation.override(language):
        text = DateTimeText()
        assert [text(v) for v in values] == [display_for_field(v, field, "-") for v in values]


def test_no_list_decrypts_anything(admin_client, monkeypatch):
    """Secrets' values, a capability's literal client secret and a connection's tokens stay encrypted
    for a list: no list shows them, and each would be decrypted on loading its row."""
    from connections.fields import EncryptedTextField
    from connections.models import Connection, OAuthCapability, Secret

    fill(5)
    for capability in OAuthCapability.objects.all():
        Connection.objects.update_or_create(
            capability=capability,
            defaults={"status": Connection.Status.CONNECTED, "access_token": "at-1", "refresh_token": "rt-1",
                      "extra": {"id_token": "x"}},
        )  # fmt: skip
    OAuthCapability.objects.update(client_secret_literal="literal-secret")
    for secret in Secret.objects.all():
        secret.value = "s3cret"
        secret.save()
    decrypted = []
    real = EncryptedTextField._decrypt
    monkeypatch.setattr(
        EncryptedTextField, "_decrypt", lambda self, value: decrypted.append(self.name) or real(self, value)
    )
    read = {}
    for _, url in changelists():
        assert admin_client.get(url).status_code == 200
        read[url], decrypted[:] = list(decrypted), []
    assert {url: names for url, names in read.items() if names} == {}
    assert admin_client.get(f"/admin/connections/secret/{Secret.objects.first().pk}/change/").status_code == 200
    assert decrypted  # the check sees decryption where it happens
