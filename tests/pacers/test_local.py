"""`workers exec --local`: the site's pacer budget when it is reachable, else one of its own process, said so."""

from __future__ import annotations

import json
import time

from connections import pacers

from .workers_pacers import api


def test_a_local_run_shares_the_site_budget_and_says_so(pacer_site):
    started = time.monotonic()
    pacers.pause(api, 8)  # as if a 429 had just paused the pacer for everyone

    answer = pacer_site.manage("workers", "exec", "once", "--local")

    assert answer.returncode == 0, answer.stderr
    assert "Pacer pacer-test:api: sharing the site's budget on" in answer.stderr
    # It sat out the rest of the site's pause (what is left after the process started).
    assert time.monotonic() - started >= 8 and json.loads(answer.stdout)["waited"] > 0.5


def test_a_local_run_that_cannot_reach_the_budget_paces_alone_and_says_so(pacer_site):
    pacers.pause(api, 30)

    answer = pacer_site.manage("workers", "exec", "once", "--local", WORKERS_PACER_REDIS_URL="redis://127.0.0.1:1/0")

    assert answer.returncode == 0, answer.stderr
    assert "this --local run paces with a budget of its own process only" in answer.stderr
    assert json.loads(answer.stdout)["waited"] < 5  # the site's 30 s pause is not its own
    assert "Traceback" not in answer.stderr
