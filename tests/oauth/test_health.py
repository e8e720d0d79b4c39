"""The health badge (`Connection.health()`) and the admin's health filter (`in_health()`, the same rule as a query) agree."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connections.deploy import deploy
from connections.models import Connection, Health, OAuthCapability


@pytest.mark.django_db
def test_badge_and_filter_agree_on_every_state():
    deploy()
    now = timezone.now()
    S = Connection.Status
    cases = [  # one per example capability, plus rows made for the rest
        {"status": S.NOT_CONNECTED},
        {"status": S.CONNECTED, "expires_at": now + timedelta(hours=1), "has_refresh_token": True},
        {"status": S.CONNECTED, "expires_at": now + timedelta(seconds=30), "has_refresh_token": True},
        {"status": S.CONNECTED, "expires_at": now - timedelta(seconds=30), "has_refresh_token": True},
        {"status": S.CONNECTED, "expires_at": now - timedelta(seconds=30), "has_refresh_token": False},
        {"status": S.CONNECTED, "expires_at": None, "has_refresh_token": False},
        {"status": S.REFRESH_FAILING, "expires_at": now - timedelta(seconds=30), "has_refresh_token": True},
        {"status": S.NEEDS_REAUTH, "has_refresh_token": True},
    ]
    template = OAuthCapability.objects.first()
    capabilities = []
    for index, fields in enumerate(cases):
        capability = OAuthCapability.objects.create(
            worker=template.worker,
            key=f"health{index}",
            name=f"health-{index}",
            authorization_endpoint=template.authorization_endpoint,
            token_endpoint=template.token_endpoint,
        )
        Connection.objects.create(capability=capability, **fields)
        capabilities.append(capability)
    no_row = OAuthCapability.objects.create(
        worker=template.worker,
        key="healthNone",
        name="health-none",
        authorization_endpoint=template.authorization_endpoint,
        token_endpoint=template.token_endpoint,
    )
    Connection.objects.filter(capability=no_row).delete()

    badge = {}
    for capability in OAuthCapability.objects.select_related("connection"):
        try:
            badge[capability.pk] = capability.connection.health()
        except Connection.DoesNotExist:
            badge[capability.pk] = Connection.health_of(None)
    assert set(badge.values()) == set(Health.values)  # every state is exercised
    for state in Health.values:
        filtered = set(OAuthCapability.objects.in_health(state).values_list("pk", flat=True))
        assert filtered == {pk for pk, s in badge.items() if s == state}, state
