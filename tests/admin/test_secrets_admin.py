"""The admin: secrets are write-only everywhere, capabilities are read-only and warn about missing secrets."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from connections.models import OAuthCapability, Secret, Worker
from connections.secrets import set_secrets

pytestmark = pytest.mark.django_db

SECRETS = "/admin/connections/secret/"


def canary() -> str:
    # Characters that HTML escaping would change, so an escaped rendering is caught as well.
    return f"val<&>'\"-{uuid.uuid4().hex}"


def renderings(value: str) -> list[str]:
    from django.utils.html import escape

    return [value, escape(value), value.split("-")[-1]]


def assert_not_in_page(value: str, html: str) -> None:
    for form in renderings(value):
        assert form not in html


def add_secret(client: Client, worker: Worker, name: str, value: str):
    page = client.get(f"{SECRETS}add/")
    assert page.status_code == 200
    assert 'type="password"' in page.content.decode()
    return client.post(f"{SECRETS}add/", {"worker": worker.pk, "name": name, "value": value})


def pages(client: Client, secret: Secret) -> dict[str, str]:
    urls = {
        "list": SECRETS,
        "change": f"{SECRETS}{secret.pk}/change/",
        "history": f"{SECRETS}{secret.pk}/history/",
        "delete": f"{SECRETS}{secret.pk}/delete/",
        "worker": f"/admin/connections/worker/{secret.worker_id}/change/",
        "log": "/admin/",
    }
    found = {}
    for label, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (label, response.status_code)
        found[label] = response.content.decode()
    return found


def log_messages(secret: Secret) -> list[LogEntry]:
    return list(LogEntry.objects.filter(object_id=str(secret.pk), content_type__model="secret").order_by("pk"))


def test_add_stores_the_value_and_no_page_shows_it(admin_client):
    github = Worker.objects.get(slug="github")
    value = canary()

    response = add_secret(admin_client, github, "GITHUB_CLIENT_SECRET", value)

    assert response.status_code == 302
    secret = Secret.objects.get(worker=github, name="GITHUB_CLIENT_SECRET")
    assert secret.value == value
    rendered = pages(admin_client, secret)
    assert "GITHUB_CLIENT_SECRET" in rendered["list"]
    for html in rendered.values():
        assert_not_in_page(value, html)
    [entry] = log_messages(secret)
    assert entry.is_addition()
    assert value not in entry.change_message and value not in entry.object_repr


def test_change_records_that_value_changed_never_the_value(admin_client):
    github = Worker.objects.get(slug="github")
    old, new = canary(), canary()
    add_secret(admin_client, github, "GITHUB_CLIENT_SECRET", old)
    secret = Secret.objects.get(name="GITHUB_CLIENT_SECRET")

    form = admin_client.get(f"{SECRETS}{secret.pk}/change/").content.decode()
    assert_not_in_page(old, form)
    assert re.search(r'<input type="password" name="value"[^>]*>', form)
    assert 'name="value" value=' not in form

    response = admin_client.post(f"{SECRETS}{secret.pk}/change/", {"value": new})

    assert response.status_code == 302
    secret.refresh_from_db()
    assert secret.value == new
    entry = log_messages(secret)[-1]
    assert entry.is_change()
    assert json.loads(entry.change_message) == [{"changed": {"fields": ["value"]}}]
    assert entry.get_change_message() == "Changed value."
    history = admin_client.get(f"{SECRETS}{secret.pk}/history/").content.decode()
    assert "Changed value." in history
    for html in pages(admin_client, secret).values():
        assert_not_in_page(old, html)
        assert_not_in_page(new, html)


def test_blank_value_on_change_keeps_the_old_one(admin_client):
    github = Worker.objects.get(slug="github")
    value = canary()
    add_secret(admin_client, github, "GITHUB_CLIENT_SECRET", value)
    secret = Secret.objects.get(name="GITHUB_CLIENT_SECRET")

    response = admin_client.post(f"{SECRETS}{secret.pk}/change/", {"value": ""})

    assert response.status_code == 302
    secret.refresh_from_db()
    assert secret.value == value
    assert log_messages(secret)[-1].get_change_message() == "No fields changed."


def test_add_requires_a_value(admin_client):
    github = Worker.objects.get(slug="github")
    response = add_secret(admin_client, github, "GITHUB_CLIENT_SECRET", "")
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Secret.objects.exists()


def test_a_rejected_form_does_not_echo_the_value(admin_client):
    github = Worker.objects.get(slug="github")
    set_secrets("github", {"GITHUB_CLIENT_ID": "first"})
    value = canary()

    response = add_secret(admin_client, github, "GITHUB_CLIENT_ID", value)  # duplicate name: refused

    assert response.status_code == 200
    html = response.content.decode()
    assert "errorlist" in html
    assert_not_in_page(value, html)
    assert Secret.objects.get(name="GITHUB_CLIENT_ID").value == "first"


def test_worker_page_lists_secret_names_and_the_missing_ones(admin_client):
    set_secrets("github", {"GITHUB_CLIENT_ID": "id-value-not-shown"})
    html = admin_client.get(f"/admin/connections/worker/{Worker.objects.get(slug='github').pk}/change/")
    html = html.content.decode()
    assert "GITHUB_CLIENT_ID" in html
    assert "GITHUB_CLIENT_SECRET, GITHUB_WEBHOOK_SECRET" in html
    assert "id-value-not-shown" not in html


# --- OAuth capabilities -------------------------------------------------------------------------


def capability_page(client: Client, capability: OAuthCapability) -> str:
    response = client.get(f"/admin/connections/oauthcapability/{capability.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def warnings(html: str) -> str:
    return " ".join(re.findall(r'<li class="warning">(.*?)</li>', html, flags=re.S))


def test_capability_page_shows_configuration_read_only(admin_client):
    capability = OAuthCapability.objects.get(key="githubAuth")
    html = capability_page(admin_client, capability)

    assert "https://github.com/login/oauth/authorize" in html
    assert "https://github.com/login/oauth/access_token" in html
    assert "repo user" in html
    for field in ("authorization_endpoint", "token_endpoint", "scope", "client_id", "client_secret_ref", "name"):
        assert not re.search(rf'<(input|textarea|select)[^>]*name="{field}"', html), field

    admin_client.post(
        f"/admin/connections/oauthcapability/{capability.pk}/change/",
        {"authorization_endpoint": "https://evil.example/authorize", "scope": "everything"},
    )
    capability.refresh_from_db()
    assert capability.authorization_endpoint == "https://github.com/login/oauth/authorize"
    assert capability.scope == "repo user"


def test_capability_page_warns_about_missing_secrets_until_they_are_set(admin_client):
    capability = OAuthCapability.objects.get(key="githubAuth")

    warned = warnings(capability_page(admin_client, capability))
    assert "GITHUB_CLIENT_ID" in warned and "GITHUB_CLIENT_SECRET" in warned
    # The webhook's secret is not this capability's concern.
    assert "GITHUB_WEBHOOK_SECRET" not in warned

    set_secrets("github", {"GITHUB_CLIENT_ID": "x"})
    warned = warnings(capability_page(admin_client, capability))
    assert "GITHUB_CLIENT_ID" not in warned and "GITHUB_CLIENT_SECRET" in warned

    set_secrets("github", {"GITHUB_CLIENT_SECRET": "y"})
    assert "GITHUB_CLIENT_SECRET" not in warnings(capability_page(admin_client, capability))
