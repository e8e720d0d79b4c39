"""Signed webhooks accepted by the production server (gunicorn, 2 processes) against `/healthz` on it.

Both are sent by 8 threads with keep-alive sessions; `/healthz` is measured before and after the
webhooks and averaged, so both see the same machine. Afterwards a real Celery worker handles the
queued events: every accepted event must end as exactly one succeeded run (none lost, none twice).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .mcp_call import _free_port, start_server
from .report import Context

MODULE = "benchmarks.webhook_worker"
ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec-bench-0123456789abcdef"
THREADS = 8


def _rate(total: int, send: Callable[[object, int], int]) -> tuple[float, list[int]]:
    """Requests per second for `total` requests over THREADS keep-alive sessions; the status codes."""
    import requests

    statuses: list[int] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def work() -> None:
        session = requests.Session()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            code = send(session, n)
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - start), statuses


def run(ctx: Context) -> None:
    from connections import registry
    from connections.deploy import deploy
    from connections.models import Run, WebhookEvent
    from connections.secrets import set_secrets

    total = ctx.scale(2000, 200)
    env = {**os.environ, "WORKER_MODULES": MODULE, "LOG_LEVEL": "WARNING"}
    os.environ["WORKER_MODULES"] = MODULE
    from django.test.utils import override_settings

    with override_settings(WORKER_MODULES=[MODULE]):
        registry.clear_cache()
        deploy()
        set_secrets("bench-hooks", {"BENCH_HOOK_SECRET": SECRET})
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, env, web_workers="2")
    run_id = time.monotonic_ns()

    def healthz(session: object, n: int) -> int:
        return session.get(f"{base}/healthz", timeout=30).status_code  # type: ignore[attr-defined]

    def hook(session: object, n: int) -> int:
        body = json.dumps({"n": n, "run": run_id}).encode()
        stamp = str(int(time.time()))
        digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"X-Signature": f"sha256={digest}", "X-Timestamp": stamp, "Content-Type": "application/json"}
        answer = session.post(f"{base}/webhooks/bench-hooks/signed/", data=body, headers=headers, timeout=30)  # type: ignore[attr-defined]
        return answer.status_code

    try:
        _rate(THREADS * 5, healthz)  # warm both processes and the sessions
        before, _ = _rate(total, healthz)
        accepted_rate, statuses = _rate(total, hook)
        after, _ = _rate(total, healthz)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    baseline = (before + after) / 2
    accepted = statuses.count(202)
    ctx.figure(
        "signed webhooks accepted (202) per second, gunicorn 2 processes, 8 concurrent senders",
        ratio=accepted_rate / baseline,
        baseline=f"/healthz on the same server ({baseline:.0f} req/s)",
        target=0.8,
        sense="min",
        detail=f"{accepted_rate:.0f} webhooks/s; {accepted} of {total} answered 202",
    )
    # Every accepted event handled exactly once, by a real Celery worker.
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers_site", "-q", "worker", "-c", "2", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + ctx.scale(900, 120)
        runs = Run.objects.filter(kind=Run.Kind.WEBHOOK)
        while time.monotonic() < deadline and runs.exclude(status=Run.Status.SUCCEEDED).exists():
            time.sleep(1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    events = WebhookEvent.objects.count()
    succeeded = runs.filter(status=Run.Status.SUCCEEDED).count()
    handled_twice = runs.filter(attempts__gt=1).count()
    # Lost (no succeeded run), doubled (a second attempt or more runs than events): both count.
    wrong = abs(succeeded - accepted) + handled_twice
    ctx.figure(
        "accepted webhook events handled exactly once (share)",
        ratio=(accepted - wrong) / max(1, accepted),
        baseline=f"{accepted} events accepted, {events} stored, {succeeded} runs succeeded, {handled_twice} retried",
        target=1.0,
        sense="min",
    )
