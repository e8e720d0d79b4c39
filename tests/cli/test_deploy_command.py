"""`workers deploy` prints what changed and what is missing; a second run prints "no changes"."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from connections.models import OAuthCapability

from .conftest import workers

pytestmark = pytest.mark.django_db

V1 = "tests.workers_deploy_v1"
V2 = "tests.workers_deploy_v2"


def test_deploy_prints_changes_then_no_changes_and_the_missing_secrets():
    with override_settings(WORKER_MODULES=[V1]):
        first = workers("deploy").splitlines()
        assert "+ worker deploytest" in first
        assert "+ sync deploytest:byHand" in first
        assert "Deployed: 9 change(s)." in first
        missing = (
            "Worker deploytest still lacks secret(s): DT_CLIENT_ID, DT_CLIENT_SECRET, DT_EXTRA_ID, DT_EXTRA_SECRET "
            "(`python manage.py workers env set --worker deploytest NAME=...`)"
        )
        assert first[-1] == missing

        assert workers("deploy").splitlines() == ["Deployed: no changes.", missing]


def test_deploy_reports_a_removed_capability_as_kept():
    with override_settings(WORKER_MODULES=[V1]):
        workers("deploy")
    with override_settings(WORKER_MODULES=[V2]):
        out = workers("deploy")
    assert (
        "- OAuth capability deploytest:extraAuth removed from code: marked inactive (its secrets and tokens are kept)"
        in out.splitlines()
    )
    assert OAuthCapability.objects.filter(key="extraAuth", is_active=False).exists()


def test_a_definition_mistake_is_a_command_error_naming_worker_and_key():
    with override_settings(WORKER_MODULES=["tests.workers_broken"]):
        with pytest.raises(CommandError, match=r"Worker broken, tasks: property 'Due' has unknown type 'formula'"):
            workers("deploy")


def test_deploy_in_a_real_process_twice(manage):
    first = manage("workers", "deploy", WORKER_MODULES=V1)
    assert first.returncode == 0, first.stderr
    assert "Deployed: 9 change(s)." in first.stdout
    second = manage("workers", "deploy", WORKER_MODULES=V1)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0] == "Deployed: no changes."


def test_deploy_failures_in_a_real_process_are_one_line(manage, tmp_path):
    manage("workers", "deploy", WORKER_MODULES="tests.workers_broken").assert_failed_with(
        "Worker broken, tasks: property 'Due' has unknown type 'formula'"
    )
    manage("workers", "deploy", WORKER_MODULES="tests.workers_raising").assert_failed_with(
        "Cannot import worker module tests.workers_raising: ValueError: j.enum() needs at least one value"
    )
    # A database nobody migrated: a reason, not a traceback.
    manage("workers", "deploy", DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}").assert_failed_with(
        "Database error: no such table"
    )


def test_a_worker_left_out_of_worker_modules_is_marked_inactive_and_deploy_says_how_to_keep_it():
    with override_settings(WORKER_MODULES=["examples.sandbox", V1]):
        workers("deploy")
    with override_settings(WORKER_MODULES=[V1]):
        out = workers("deploy").splitlines()
    assert "- worker sandbox is no longer in WORKER_MODULES: marked inactive" in out
    assert (
        "WORKER_MODULES is tests.workers_deploy_v1: a worker of a module not listed is marked inactive (its secrets "
        "and tokens are kept; list its module again and deploy to bring it back). Set WORKER_MODULES in .env, so "
        "that every command and process uses the same list."
    ) in out
