"""Background care by Celery beat's tasks, run by a real Celery worker process."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from connections.models import Connection
from connections.oauth.tasks import keep_refresh_tokens_alive, refresh_expiring_tokens

from .conftest import connect_fake

pytestmark = pytest.mark.celery


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_tokens_about_to_expire_are_refreshed_in_the_background(site, fake, celery_worker):
    conn = connect_fake(site)
    # An hour-long token with two minutes left.
    Connection.objects.filter(pk=conn.pk).update(
        expires_at=timezone.now() + timedelta(seconds=120), connected_at=timezone.now() - timedelta(minutes=58)
    )
    refresh_expiring_tokens.delay()
    wait_for(lambda: Connection.objects.get(pk=conn.pk).refresh_count == 1)
    conn.refresh_from_db()
    assert conn.expires_at > timezone.now() + timedelta(minutes=50)
    assert len(fake.refresh_requests) == 1


def test_idle_refresh_tokens_are_kept_alive(site, fake, celery_worker):
    conn = connect_fake(site)
    Connection.objects.filter(pk=conn.pk).update(connected_at=timezone.now() - timedelta(hours=25))
    old_refresh = conn.refresh_token
    keep_refresh_tokens_alive.delay()
    wait_for(lambda: Connection.objects.get(pk=conn.pk).refresh_count == 1)
    conn.refresh_from_db()
    assert conn.refresh_token != old_refresh and conn.last_refreshed_at is not None
    # Used just now: left alone (run in this process, to read the counts it returns).
    assert keep_refresh_tokens_alive() == {"refreshed": 0, "skipped": 0, "failed": 0}
    assert Connection.objects.get(pk=conn.pk).refresh_count == 1


def test_old_authorization_attempts_are_purged(site):
    from connections.models import AuthorizationAttempt, OAuthCapability
    from connections.oauth.flow import start_authorization
    from connections.oauth.tasks import purge_authorization_attempts

    capability = OAuthCapability.objects.get(key="sandboxAuth")
    old = start_authorization(capability, origin="cli").attempt
    recent = start_authorization(capability, origin="cli").attempt
    AuthorizationAttempt.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    assert purge_authorization_attempts() == 1
    assert list(AuthorizationAttempt.objects.values_list("pk", flat=True)) == [recent.pk]
