"""Each refresh sent to a provider is counted by outcome in `/metrics`, whichever process sent it."""

from __future__ import annotations

import io

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test.utils import override_settings
from prometheus_client.parser import text_string_to_metric_families

from .fake_provider import Reply

TOKEN = "metrics-token-for-refreshes-0123"


def refreshes(url: str) -> dict[str, float]:
    answer = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "workers_token_refreshes_total"
    }


def refresh() -> None:
    call_command("workers", "oauth", "refresh", "fakeAuth", stdout=io.StringIO(), stderr=io.StringIO())


def test_refreshes_are_counted_by_outcome(site, fake, fake_connected):
    with override_settings(METRICS_TOKEN=TOKEN):
        assert refreshes(site.url) == {"succeeded": 0, "failed": 0, "refused": 0}
        fake.script.append(Reply(status=503, body='{"error": "temporarily_unavailable"}'))
        with pytest.raises(CommandError):
            refresh()
        assert refreshes(site.url) == {"succeeded": 0, "failed": 1, "refused": 0}
        refresh()
        refresh()
        assert refreshes(site.url) == {"succeeded": 2, "failed": 1, "refused": 0}
        fake_connected.refresh_from_db()
        fake.revoked_refresh_tokens.add(fake_connected.refresh_token)
        with pytest.raises(CommandError, match="re-authorization"):
            refresh()
        assert refreshes(site.url) == {"succeeded": 2, "failed": 1, "refused": 1}
