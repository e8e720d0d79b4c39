"""Settings: every default is written once (connections/conf.py), for the environment and Django settings alike."""

from __future__ import annotations

import environ
import pytest

from connections.conf import DEFAULTS, AppSettings, from_environment

pytestmark = pytest.mark.unit

PROPERTIES = [name for name, value in vars(AppSettings).items() if isinstance(value, property)]


def test_without_any_setting_every_property_falls_back_to_its_one_default(settings, monkeypatch):
    for name in [name for name in DEFAULTS if name.startswith("WORKERS_")]:  # the site's URLconf needs the rest
        try:
            delattr(settings, name)
        except AttributeError:  # not set in this site's settings: the default applies anyway
            pass
    values = {name: getattr(AppSettings(), name) for name in PROPERTIES}  # none may raise
    assert values["HTTP_TIMEOUT"] == DEFAULTS["WORKERS_HTTP_TIMEOUT"]
    assert values["PACER_MAX_PAUSE"] == DEFAULTS["WORKERS_PACER_MAX_PAUSE"]


def test_the_environment_is_read_under_each_name_cast_like_its_default(monkeypatch):
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    assert from_environment(environ.Env()) == {k: v for k, v in DEFAULTS.items() if k.startswith("WORKERS_")}
    monkeypatch.setenv("WORKERS_HTTP_TIMEOUT", "7.5")
    monkeypatch.setenv("WORKERS_RUN_LEASE", "30")
    values = from_environment(environ.Env())
    assert values["WORKERS_HTTP_TIMEOUT"] == 7.5 and values["WORKERS_RUN_LEASE"] == 30


def test_every_app_setting_has_the_workers_prefix():
    site_wide = {"PUBLIC_URL", "WORKER_MODULES", "SANDBOX_PROVIDER", "METRICS_TOKEN", "LOG_FORMAT"}
    assert all(name.startswith("WORKERS_") for name in set(DEFAULTS) - site_wide)
