"""`/metrics`: off without METRICS_TOKEN, behind its bearer token, and every value read from the database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connections.models import Connection, OAuthCapability, Run, Worker

from .oauth_helpers import connect
from .runner.conftest import (
    runner_site,  # noqa: F401  (a fixture)
    wait_for_run,
)
from .runner.test_webhooks import post, signed_headers

TOKEN = "metrics-token-0123456789abcdef"


def scrape(url: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{url}/metrics", headers=headers, timeout=30)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a scrape, parsed by prometheus-client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_metrics_answer_404_while_the_token_is_unset(site):
    with override_settings(METRICS_TOKEN=""):
        assert scrape(site.url).status_code == 404
        assert scrape(site.url, token=None).status_code == 404


def test_metrics_need_the_bearer_token(site):
    with override_settings(METRICS_TOKEN=TOKEN):
        assert scrape(site.url, token=None).status_code == 401
        wrong = scrape(site.url, token="not-the-token")
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        answer = requests.get(f"{site.url}/metrics", headers={"Authorization": f"Basic {TOKEN}"}, timeout=30)
        assert answer.status_code == 401
        ok = scrape(site.url)
        assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert TOKEN not in ok.text


@pytest.mark.celery
def test_metrics_count_what_the_workers_did(runner_site, celery_worker):  # noqa: F811
    from oauth2_provider.models import RefreshToken

    # Runs on the Celery worker process: a tool that succeeds, one that fails, a sync of 25 records.
    assert runner_site.manage("workers", "exec", "add", "--input", '{"a": 1, "b": 2}').returncode == 0
    assert runner_site.manage("workers", "exec", "boom").returncode != 0
    synced = runner_site.manage("workers", "sync", "run", "pagesSync")
    assert synced.returncode == 0, synced.stderr
    # A webhook event accepted and handled, one refused for its signature.
    body = json.dumps({"action": "opened"}).encode()
    accepted = post(runner_site, "signed", body, signed_headers(body))
    assert accepted.status_code == 202
    wait_for_run(accepted.json()["run"])
    assert post(runner_site, "signed", body, signed_headers(body, secret="wrong-secret")).status_code == 401
    # A connection, refreshed once by the CLI, then refused by the provider (its refresh token revoked).
    connect(runner_site)
    assert runner_site.manage("workers", "oauth", "refresh", "sandboxAuth").returncode == 0

    with override_settings(METRICS_TOKEN=TOKEN):
        found = samples(scrape(runner_site.url).text)
        assert value(found, "workers_runs", kind="tool", status="succeeded") == 1
        assert value(found, "workers_runs", kind="tool", status="failed") == 1
        assert value(found, "workers_runs", kind="sync", status="succeeded") == 1
        assert value(found, "workers_runs", kind="webhook", status="succeeded") == 1
        assert value(found, "workers_run_duration_seconds_bucket", kind="tool", le="+Inf") == 2
        assert value(found, "workers_run_duration_seconds_gcount", kind="tool") == 2
        assert value(found, "workers_run_queue_wait_seconds_bucket", kind="sync", le="+Inf") == 1
        assert value(found, "workers_run_queue_wait_seconds_bucket", kind="tool", le="900.0") == 2
        assert value(found, "workers_sync_records_written_total", operation="created") == 25
        assert value(found, "workers_sync_records_written_total", operation="deleted") == 0
        assert value(found, "workers_token_refreshes_total", outcome="succeeded") == 1
        assert value(found, "workers_token_refreshes_total", outcome="refused") == 0
        assert value(found, "workers_webhook_events", status="accepted") == 1
        assert value(found, "workers_webhook_events", status="rejected") == 1
        assert value(found, "workers_connections", health="connected") == 1
        expires_in = value(found, "workers_token_expires_in_seconds", worker="sandbox", capability="sandboxAuth")
        assert 3000 < expires_in <= 3600

        RefreshToken.objects.all().delete()
        refused = runner_site.manage("workers", "oauth", "refresh", "sandboxAuth")
        assert refused.returncode != 0
        found = samples(scrape(runner_site.url).text)
        assert value(found, "workers_token_refreshes_total", outcome="refused") == 1
        assert value(found, "workers_token_refreshes_total", outcome="succeeded") == 1
        assert value(found, "workers_connections", health="needs_reauth") == 1
        assert value(found, "workers_connections", health="connected") == 0


def _runs(worker: Worker, count: int) -> None:
    now = timezone.now()
    batch = []
    for index in range(count):
        status = (Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.QUEUED)[index % 3]
        started = now - timedelta(seconds=index % 500) if status != Run.Status.QUEUED else None
        batch.append(
            Run(
                kind=(Run.Kind.TOOL, Run.Kind.SYNC, Run.Kind.WEBHOOK)[index % 3 - 1],
                worker=worker,
                target="t",
                status=status,
                started_at=started,
                finished_at=started + timedelta(seconds=index % 7) if started else None,
            )
        )
    Run.objects.bulk_create(batch, batch_size=5000)


@pytest.mark.django_db
def test_a_scrape_costs_the_same_queries_at_100000_runs():
    from connections.metrics import exposition

    worker = Worker.objects.create(slug="bulk", module="m")
    for index in range(20):
        capability = OAuthCapability.objects.create(
            worker=worker,
            key=f"c{index}",
            name="n",
            authorization_endpoint="https://a.test/",
            token_endpoint="https://a.test/",
        )
        Connection.objects.create(
            capability=capability, status="connected", expires_at=timezone.now() + timedelta(hours=1)
        )
    _runs(worker, 10)
    with CaptureQueriesContext(connection) as few:
        small = exposition().decode()
    _runs(worker, 100_000 - 10)
    with CaptureQueriesContext(connection) as many:
        large = exposition().decode()

    assert len(many) == len(few) <= 8, [q["sql"] for q in many.captured_queries]
    found = samples(large)
    total = sum(v for (name, _), v in found.items() if name == "workers_runs")
    assert total == 100_000 and total != sum(v for (name, _), v in samples(small).items() if name == "workers_runs")
    assert value(found, "workers_connections", health="connected") == 20
