"""Deploy records the pacers a worker declares; the admin lists them with their rate and last minute's requests."""

from __future__ import annotations

from django.test.utils import override_settings

from connections import registry
from connections.deploy import deploy
from connections.models import Pacer

from .conftest import PACER_MODULES
from .workers_pacers import api


def test_deploy_records_pacers_and_marks_removed_ones_inactive(pacer_site):
    row = Pacer.objects.get(worker__slug="pacer-test", key="api")
    assert (row.allowed_requests, row.interval_ms, row.is_active) == (10, 1000, True)

    with override_settings(WORKER_MODULES=PACER_MODULES):
        registry.clear_cache()
        assert not any("pacer" in line for line in deploy().changes)  # idempotent
        # The same modules but this one: the pacer-test worker is gone from WORKER_MODULES.
        report = deploy([module for module in PACER_MODULES if module != "tests.pacers.workers_pacers"])

    row.refresh_from_db()
    assert row.is_active is False
    assert any("worker pacer-test is no longer in WORKER_MODULES" in line for line in report.changes)


def test_admin_lists_each_pacer_with_its_rate_and_requests_in_the_last_minute(pacer_site):
    for _ in range(3):
        api.wait()
    session = pacer_site.admin_session()

    page = session.get(f"{pacer_site.url}/admin/connections/pacer/", timeout=10)

    assert page.status_code == 200
    row = page.text[page.text.index("field-key") :]
    row = row[: row.index("</tr>")]
    assert "api" in row and "pacer-test" in row and "10 per 1000 ms (10/s)" in row
    assert '<td class="field-last_minute">3</td>' in row
    detail = session.get(f"{pacer_site.url}/admin/connections/pacer/{Pacer.objects.get().pk}/change/", timeout=10)
    assert detail.status_code == 200 and "requests in the last minute" in detail.text.lower()
