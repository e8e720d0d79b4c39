"""http:// is decided by `check_transport` alone (loopback hosts only), not by a process-wide oauthlib switch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.unit

PROBE = """
import os, django
django.setup()
import connections.oauth.client, connections.oauth.flow, connections.oauth.tokens  # everything that talks OAuth
print(os.environ.get("OAUTHLIB_INSECURE_TRANSPORT", "unset"))
"""


def test_importing_the_oauth_code_leaves_oauthlibs_insecure_transport_switch_alone():
    # The switch would let every library in the process (worker code's own oauthlib calls too)
    # send tokens over plain http to any host.
    env = {k: v for k, v in os.environ.items() if k != "OAUTHLIB_INSECURE_TRANSPORT"}
    env["DJANGO_SETTINGS_MODULE"] = "workers_site.settings"
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "unset"
