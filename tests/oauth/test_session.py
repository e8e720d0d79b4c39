"""capability.session(): the bearer token on every request; on a 401, one refresh and one retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from connections.exceptions import ReauthorizationRequired
from connections.models import Connection
from connections.registry import get_capability

from ..oauth_helpers import connect


def test_a_401_refreshes_once_and_retries_once(site):
    connect(site)
    capability = get_capability("sandbox", "sandboxAuth")
    me = f"{site.url}/sandbox/api/me"
    assert capability.session().get(me, timeout=10).json()["username"] == "admin"

    # The provider ends the access token before the expiry it announced.
    get_access_token_model().objects.update(expires=timezone.now() - timedelta(seconds=1))
    answer = capability.session().get(me, timeout=10)
    assert answer.status_code == 200 and answer.json()["username"] == "admin"
    conn = Connection.objects.get(capability__key="sandboxAuth")
    assert conn.refresh_count == 1

    # Access and refresh token both gone: one refresh attempt, then the reconnect message.
    get_access_token_model().objects.all().delete()
    get_refresh_token_model().objects.all().delete()
    with pytest.raises(ReauthorizationRequired, match="reconnect sandboxAuth"):
        capability.session().get(me, timeout=10)
    conn.refresh_from_db()
    assert conn.status == Connection.Status.NEEDS_REAUTH and conn.refresh_count == 1
