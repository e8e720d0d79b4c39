"""Acceptance over the sandbox provider: a connected capability's tools and syncs on a real Celery worker."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from celery.signals import before_task_publish
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken

from connections.models import Connection, Record, Run
from sandbox.models import SandboxItem
from tests.oauth_helpers import connect

pytestmark = pytest.mark.celery


def workers(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("workers", *args, "--timeout", "120", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_tool_on_a_worker_returns_the_sandbox_me_answer(runner_site, celery_worker):
    connect(runner_site)
    token = Connection.objects.get(capability__key="sandboxAuth").access_token
    messages: list[str] = []

    def record(body: object = None, headers: object = None, **_: object) -> None:
        messages.append(json.dumps([body, headers], default=str))

    before_task_publish.connect(record, weak=False)
    try:
        out, _ = workers("exec", "getMe")
    finally:
        before_task_publish.disconnect(record)

    admin = get_user_model().objects.get(username="admin")
    assert json.loads(out) == {"id": admin.pk, "username": "admin", "email": "admin@example.test"}
    run = Run.objects.get(target="getMe")
    assert run.status == "succeeded" and run.trigger == "cli"
    assert messages and all(token not in message for message in messages)


def test_a_sync_over_the_paginated_api_fills_the_database_then_changes_nothing(runner_site, celery_worker):
    connect(runner_site)

    out, _ = workers("sync", "run", "itemsSync", "--worker", "sandbox")
    assert "3 page(s), 25 record(s) written (25 new" in out
    filled = {r.key: r.properties for r in Record.objects.filter(database__worker__slug="sandbox")}
    assert len(filled) == 25

    out, _ = workers("sync", "run", "itemsSync", "--worker", "sandbox")
    assert "0 record(s) written (0 new, 0 changed, 0 unchanged), 0 deleted" in out
    assert {r.key: r.properties for r in Record.objects.filter(database__worker__slug="sandbox")} == filled

    gone = SandboxItem.objects.order_by("id")[3]
    gone.deleted = True
    gone.save()  # bumps updated_at, so the provider lists it as changed
    out, _ = workers("sync", "run", "itemsSync", "--worker", "sandbox")
    assert "1 deleted" in out
    keys = set(Record.objects.filter(database__worker__slug="sandbox").values_list("key", flat=True))
    assert keys == set(filled) - {str(gone.pk)}


def test_a_revoked_token_fails_once_with_the_reconnect_message(runner_site, celery_worker):
    connect(runner_site)
    AccessToken.objects.all().delete()
    RefreshToken.objects.all().delete()
    Connection.objects.filter(capability__key="sandboxAuth").update(expires_at=timezone.now())

    with pytest.raises(CommandError, match="reconnect sandboxAuth in the admin"):
        workers("exec", "getMe")

    run = Run.objects.get(target="getMe")
    assert run.status == "failed" and run.attempts == 1  # no retry storm
    assert "reconnect sandboxAuth" in run.error


def test_a_429_with_retry_after_succeeds_on_retry(runner_site, celery_worker):
    connect(runner_site)

    out, err = workers("exec", "throttled", "--input", '{"key": "acceptance"}')

    assert json.loads(out)["calls"] == 2
    run = Run.objects.get(target="throttled")
    assert run.status == "succeeded" and run.attempts == 2 and run.error == ""
    assert "429" in err and "retrying in" in err
    # When the retry was due (what the lost-message sweep goes by), and it was not claimed before.
    assert run.queued_at < run.due_at <= run.finished_at + timedelta(seconds=5)
