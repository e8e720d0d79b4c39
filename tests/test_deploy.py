"""Deploy records what the code declares: idempotent, never deletes, schedules syncs in django-celery-beat."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator

import pytest
from django.test import override_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from connections import registry
from connections.deploy import deploy
from connections.exceptions import WorkerDefinitionError
from connections.models import Connection, OAuthCapability, Secret, Sync, SyncedDatabase, Tool, Worker
from connections.sdk import Worker as SdkWorker
from connections.secrets import set_secrets

V1 = "tests.workers_deploy_v1"
V2 = "tests.workers_deploy_v2"

pytestmark = pytest.mark.django_db


def deploy_modules(*modules: str):
    with override_settings(WORKER_MODULES=list(modules)):
        registry.clear_cache()
        return deploy()


def test_first_deploy_records_everything_and_the_second_changes_nothing():
    first = deploy_modules(V1)
    assert "+ worker deploytest" in first.changes
    assert "+ OAuth capability deploytest:mainAuth" in first.changes
    assert "+ sync deploytest:nightly" in first.changes
    worker = Worker.objects.get(slug="deploytest")
    assert worker.module == V1
    assert set(worker.capabilities.values_list("key", flat=True)) == {"mainAuth", "extraAuth"}
    assert set(worker.syncs.values_list("key", flat=True)) == {"every15", "hourly", "nightly", "byHand"}
    extra = OAuthCapability.objects.get(worker=worker, key="extraAuth")
    assert extra.client_id == {"secret": "DT_EXTRA_ID"}
    assert extra.client_secret_ref == "DT_EXTRA_SECRET"
    assert extra.authorization_params == {"access_type": "offline"}
    assert extra.access_token_expire_ms == 3_600_000
    rows = {model: model.objects.count() for model in (Worker, OAuthCapability, Connection, Sync, Tool, PeriodicTask)}

    second = deploy_modules(V1)

    assert second.changes == []
    assert not second.changed
    assert {model: model.objects.count() for model in rows} == rows


def test_deploy_works_before_any_secret_is_set_and_lists_what_is_missing():
    report = deploy_modules(V1)
    assert report.missing == {"deploytest": ["DT_CLIENT_ID", "DT_CLIENT_SECRET", "DT_EXTRA_ID", "DT_EXTRA_SECRET"]}

    set_secrets("deploytest", {"DT_CLIENT_ID": "id-1", "DT_CLIENT_SECRET": "secret-1"})
    report = deploy_modules(V1)
    assert report.missing == {"deploytest": ["DT_EXTRA_ID", "DT_EXTRA_SECRET"]}
    assert report.changes == []


def test_removed_capability_is_marked_inactive_and_keeps_its_secrets_and_tokens():
    deploy_modules(V1)
    set_secrets("deploytest", {"DT_EXTRA_ID": "extra-id", "DT_EXTRA_SECRET": "extra-secret"})
    conn = Connection.objects.get(capability__worker__slug="deploytest", capability__key="extraAuth")
    conn.status = Connection.Status.CONNECTED
    conn.access_token = "access-token-kept"
    conn.refresh_token = "refresh-token-kept"
    conn.has_refresh_token = True
    conn.save()

    report = deploy_modules(V2)

    assert (
        "- OAuth capability deploytest:extraAuth removed from code: marked inactive "
        "(its secrets and tokens are kept)" in report.changes
    )
    capability = OAuthCapability.objects.get(worker__slug="deploytest", key="extraAuth")
    assert capability.is_active is False
    conn = Connection.objects.get(pk=conn.pk)
    assert conn.capability_id == capability.pk
    assert (conn.status, conn.access_token, conn.refresh_token) == (
        Connection.Status.CONNECTED,
        "access-token-kept",
        "refresh-token-kept",
    )
    assert set(Secret.objects.filter(worker__slug="deploytest").values_list("name", flat=True)) == {
        "DT_EXTRA_ID",
        "DT_EXTRA_SECRET",
    }
    # An inactive capability's secrets are no longer wanted, so no longer reported as missing.
    assert report.missing == {"deploytest": ["DT_CLIENT_ID", "DT_CLIENT_SECRET"]}
    assert deploy_modules(V2).changes == []

    back = deploy_modules(V1)
    assert "~ OAuth capability deploytest:extraAuth: reactivated" in back.changes
    assert Connection.objects.get(pk=conn.pk).access_token == "access-token-kept"


def periodic(sync_key: str) -> PeriodicTask | None:
    sync = Sync.objects.select_related("periodic_task").get(worker__slug="deploytest", key=sync_key)
    return sync.periodic_task


def test_sync_schedules_become_beat_entries():
    deploy_modules(V1)

    every15 = periodic("every15")
    assert (every15.interval.every, every15.interval.period) == (15, IntervalSchedule.MINUTES)
    assert every15.crontab is None
    assert every15.enabled
    assert every15.task == "connections.tasks.run_scheduled_sync"
    assert json.loads(every15.kwargs) == {"sync_id": Sync.objects.get(key="every15").pk}

    hourly = periodic("hourly")
    assert (hourly.interval.every, hourly.interval.period) == (60, IntervalSchedule.MINUTES)

    nightly = periodic("nightly")
    assert nightly.interval is None
    cron = nightly.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "30",
        "2",
        "*",
        "*",
        "*",
    )
    assert str(cron.timezone) == "UTC"  # the cron line is read in UTC whatever the site's TIME_ZONE

    assert periodic("byHand") is None
    assert not PeriodicTask.objects.filter(name__contains="byHand").exists()
    assert PeriodicTask.objects.filter(task="connections.tasks.run_scheduled_sync").count() == 3


def test_removed_sync_is_unscheduled_and_beat_is_told():
    deploy_modules(V1)
    hourly = periodic("hourly")
    before = PeriodicTasks.last_change()

    report = deploy_modules(V2)

    assert "- sync deploytest:hourly removed from code: marked inactive" in report.changes
    assert Sync.objects.get(key="hourly").is_active is False
    hourly.refresh_from_db()
    assert hourly.enabled is False
    # django-celery-beat's DatabaseScheduler reloads only when this timestamp moves.
    after = PeriodicTasks.last_change()
    assert after is not None and (before is None or after > before)
    assert periodic("every15").enabled


@pytest.fixture
def dynamic_module() -> Iterator[types.ModuleType]:
    """A worker module built in the test, for variants the file-based modules do not cover."""
    module = types.ModuleType("tests_dynamic_workers")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def literal_worker(secret: str, schedule: str) -> SdkWorker:
    worker = SdkWorker("literal")
    worker.oauth(
        "litAuth",
        name="lit",
        authorization_endpoint="https://lit.example.test/a",
        token_endpoint="https://lit.example.test/t",
        scope="read",
        client_id="public-client-id",
        client_secret=secret,
    )
    db = worker.database("rows", primary_key="Name", properties={"Name": {"type": "title"}})
    worker.sync("rowsSync", database=db, schedule=schedule)(lambda state, context: {"changes": []})
    return worker


def test_changes_are_reported_by_field_name_never_by_value(dynamic_module):
    dynamic_module.worker = literal_worker("literal-secret-one", "15m")
    first = deploy_modules(dynamic_module.__name__)
    assert not any("literal-secret-one" in line for line in first.changes)
    capability = OAuthCapability.objects.get(key="litAuth")
    assert capability.client_secret_literal == "literal-secret-one"
    assert capability.client_id == {"value": "public-client-id"}

    dynamic_module.worker = literal_worker("literal-secret-two", "manual")
    registry.clear_cache()
    second = deploy_modules(dynamic_module.__name__)

    assert "~ OAuth capability literal:litAuth: client_secret_literal changed" in second.changes
    assert "~ sync literal:rowsSync: schedule changed" in second.changes
    assert not any("literal-secret" in line for line in second.changes)
    # Switched to manual: the beat entry is gone, not merely disabled.
    assert Sync.objects.get(key="rowsSync").periodic_task is None
    assert not PeriodicTask.objects.filter(name__contains="rowsSync").exists()


def test_worker_dropped_from_worker_modules_is_marked_inactive_with_everything_it_declared():
    deploy_modules(V1)
    set_secrets("deploytest", {"DT_CLIENT_ID": "kept"})

    report = deploy_modules("examples.github")

    assert "- worker deploytest is no longer in WORKER_MODULES: marked inactive" in report.changes
    assert Worker.objects.get(slug="deploytest").is_active is False
    assert not OAuthCapability.objects.filter(worker__slug="deploytest", is_active=True).exists()
    assert not PeriodicTask.objects.filter(name__startswith="workers sync deploytest:", enabled=True).exists()
    assert Secret.objects.get(worker__slug="deploytest", name="DT_CLIENT_ID").value == "kept"
    assert "deploytest" not in report.missing


def test_a_definition_mistake_fails_deploy_naming_worker_and_key_and_writes_nothing():
    with pytest.raises(WorkerDefinitionError) as exc:
        deploy_modules(V1, "tests.workers_broken")
    assert "Worker broken, tasks: property 'Due' has unknown type 'formula'" in str(exc.value)
    assert not Worker.objects.exists()


def test_an_unimportable_module_is_a_definition_error():
    with pytest.raises(WorkerDefinitionError, match="Cannot import worker module tests.no_such_workers"):
        deploy_modules("tests.no_such_workers")


def test_any_exception_while_importing_worker_code_is_a_definition_error():
    with pytest.raises(WorkerDefinitionError) as exc:
        deploy_modules("tests.workers_raising")
    assert str(exc.value) == (
        "Cannot import worker module tests.workers_raising: ValueError: j.enum() needs at least one value"
    )


def limited_worker(tool_limit: float | None, page_limit: float | None) -> SdkWorker:
    worker = SdkWorker("limited")
    worker.tool("slow", schema={"type": "object"}, time_limit=tool_limit)(lambda data, context: None)
    db = worker.database("rows", primary_key="Name", properties={"Name": {"type": "title"}})
    worker.sync("rowsSync", database=db, schedule="manual", time_limit=page_limit)(lambda state, context: {})
    return worker


def test_time_limits_are_recorded_and_a_change_is_reported(dynamic_module):
    dynamic_module.worker = limited_worker(None, 45)
    deploy_modules(dynamic_module.__name__)
    assert Tool.objects.get(key="slow").time_limit is None  # the setting's default applies
    assert Sync.objects.get(key="rowsSync").time_limit == 45

    dynamic_module.worker = limited_worker(30, 45)
    registry.clear_cache()
    report = deploy_modules(dynamic_module.__name__)

    assert report.changes == ["~ tool limited:slow: time_limit changed"]
    assert Tool.objects.get(key="slow").time_limit == 30


def test_a_redeploy_keeps_what_a_running_sync_wrote_meanwhile(dynamic_module):
    """Deploy reads a changed sync's row, then saves it: a page committed in between (state, page count,
    cycle) must stay. Before, the whole row was saved back as deploy had read it."""
    from django.db.models.signals import pre_save

    dynamic_module.worker = limited_worker(None, 45)
    deploy_modules(dynamic_module.__name__)
    sync = Sync.objects.get(key="rowsSync")
    Sync.objects.filter(pk=sync.pk).update(state={"page": 3}, pages_done=3, cycle=2, cycle_in_progress=True)

    def page_commits_meanwhile(sender, instance, **kwargs):
        if instance.pk == sync.pk:
            Sync.objects.filter(pk=sync.pk).update(state={"page": 4}, pages_done=4)

    dynamic_module.worker = limited_worker(None, 60)
    registry.clear_cache()
    pre_save.connect(page_commits_meanwhile, sender=Sync)
    try:
        report = deploy_modules(dynamic_module.__name__)
    finally:
        pre_save.disconnect(page_commits_meanwhile, sender=Sync)

    assert report.changes == ["~ sync limited:rowsSync: time_limit changed"]
    stored = Sync.objects.get(pk=sync.pk)
    assert (stored.time_limit, stored.state, stored.pages_done, stored.cycle) == (60, {"page": 4}, 4, 2)


def _ordered_worker(properties: dict) -> SdkWorker:
    worker = SdkWorker("ordered")
    db = worker.database("rows", primary_key="Title", properties=properties)
    worker.sync("rowsSync", database=db, schedule="manual")(lambda state, context: {"changes": []})
    return worker


# Declared with the longest name last but one: jsonb stores shorter names first.
_PROPERTIES = {"Title": {"type": "title"}, "Longest name": {"type": "number"}, "Id": {"type": "rich_text"}}


def test_the_property_order_migration_0017_filled_in_is_corrected_without_a_change_line(dynamic_module):
    dynamic_module.worker = _ordered_worker(_PROPERTIES)
    deploy_modules(dynamic_module.__name__)
    # What the migration wrote: the order of the properties as the database returns them (on
    # PostgreSQL jsonb's: Id, Title, Longest name; on SQLite the code's at its last deploy).
    row = SyncedDatabase.objects.get(key="rows")
    SyncedDatabase.objects.filter(pk=row.pk).update(property_order=list(row.properties))

    report = deploy_modules(dynamic_module.__name__)

    assert report.changes == []
    assert SyncedDatabase.objects.get(key="rows").property_order == ["Title", "Longest name", "Id"]


def test_properties_reordered_in_code_are_reported(dynamic_module):
    dynamic_module.worker = _ordered_worker(_PROPERTIES)
    deploy_modules(dynamic_module.__name__)

    dynamic_module.worker = _ordered_worker(dict(reversed(_PROPERTIES.items())))
    registry.clear_cache()
    report = deploy_modules(dynamic_module.__name__)

    assert report.changes == ["~ database ordered:rows: property_order changed"]
    assert SyncedDatabase.objects.get(key="rows").property_order == ["Id", "Longest name", "Title"]
