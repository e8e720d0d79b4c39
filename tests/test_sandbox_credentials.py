"""A worker of one's own on the sandbox preset gets the sandbox provider's client credentials at deploy."""

from __future__ import annotations

import pytest
from django.test import override_settings

from connections.models import Secret
from sandbox.setup import setup_sandbox

from .cli.conftest import workers

pytestmark = pytest.mark.django_db
MODULE = "tests.workers_sandbox_preset"


def secrets_of(worker: str) -> dict[str, str]:
    return dict(Secret.objects.filter(worker__slug=worker).values_list("name", "value"))


def test_deploy_fills_the_credentials_a_sandbox_preset_worker_lacks():
    setup_sandbox()
    with override_settings(WORKER_MODULES=["examples.sandbox", MODULE], SANDBOX_PROVIDER=True):
        out = workers("deploy")
    assert (
        "Set PRESET_CLIENT_ID, PRESET_CLIENT_SECRET of worker presettest to the sandbox provider's client credentials."
        in out.splitlines()
    )
    assert "lacks" not in out
    sandbox = secrets_of("sandbox")
    assert secrets_of("presettest") == {
        "PRESET_CLIENT_ID": sandbox["SANDBOX_CLIENT_ID"],
        "PRESET_CLIENT_SECRET": sandbox["SANDBOX_CLIENT_SECRET"],
    }


def test_a_value_set_by_hand_is_kept_and_nothing_is_filled_without_the_sandbox_provider():
    setup_sandbox()
    with override_settings(WORKER_MODULES=[MODULE], SANDBOX_PROVIDER=False):
        out = workers("deploy")
    assert "Worker presettest still lacks secret(s): PRESET_CLIENT_ID, PRESET_CLIENT_SECRET" in out
    workers("env", "set", "--worker", "presettest", "PRESET_CLIENT_ID=mine")
    with override_settings(WORKER_MODULES=[MODULE], SANDBOX_PROVIDER=True):
        out = workers("deploy")
    assert "Set PRESET_CLIENT_SECRET of worker presettest to the sandbox provider's client credentials." in out
    assert secrets_of("presettest")["PRESET_CLIENT_ID"] == "mine"
