"""64 callers (4 processes x 16 threads) of access_token() on one expired token, against one lone refresh.

Each caller is timed from a common start instant to its token, like the lone refresh (see
`_callers`). Like the lone refresh, made on a connection that has run queries before, the callers
are warm: each has handed out another capability's token on its connection, as in a worker that
has run tasks before (a new PostgreSQL connection loads the tables' catalog entries on its first
query). Callers on connections that have run nothing yet are measured too, in the detail. The
token endpoint is a small threaded HTTP server in this process that takes 200 ms to answer, as a
slow provider does. Every caller must get the new token from a single refresh request: the others
wait on the connection's refresh lock and read what the first one stored.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .report import Context

PROCESSES, THREADS = 4, 16
DELAY = 0.2
SLUG, KEY = "bench-stampede", "stampedeAuth"
WARM_KEY = "warmAuth"  # a second capability, with a token that stays fresh


class _Endpoint(BaseHTTPRequestHandler):
    requests = 0
    arrived = 0.0  # when the last request arrived (perf_counter, the clock every caller times with)
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Endpoint.arrived = time.perf_counter()
        with _Endpoint.lock:
            _Endpoint.requests += 1
            n = _Endpoint.requests
        time.sleep(DELAY)
        body = json.dumps(
            {"access_token": f"access-{n:04d}-" + "a" * 30, "token_type": "bearer", "expires_in": 3600}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _token_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def _setup(token_endpoint: str) -> None:
    from django.utils import timezone

    from connections.models import Connection, OAuthCapability, Worker

    worker, _ = Worker.objects.get_or_create(slug=SLUG, defaults={"module": "bench"})
    capability, _ = OAuthCapability.objects.update_or_create(
        worker=worker,
        key=KEY,
        defaults={
            "name": "bench",
            "authorization_endpoint": token_endpoint.replace("/token", "/authorize"),
            "token_endpoint": token_endpoint,
            "scope": "read",
            "client_id": {"value": "bench-client"},
            "client_secret_literal": "bench-client-secret",
        },
    )
    Connection.objects.update_or_create(capability=capability, defaults={"status": Connection.Status.CONNECTED})
    warm, _ = OAuthCapability.objects.update_or_create(
        worker=worker,
        key=WARM_KEY,
        defaults={"name": "warm", "authorization_endpoint": token_endpoint, "token_endpoint": token_endpoint},
    )
    now = timezone.now()
    Connection.objects.update_or_create(
        capability=warm,
        defaults={
            "status": Connection.Status.CONNECTED,
            "access_token": "warm-" + "w" * 35,
            "expires_at": now + timedelta(days=1),
            "connected_at": now,
        },
    )


def _expire() -> None:
    """The token expired a minute ago; the refresh token is still good."""
    from django.utils import timezone

    from connections.models import Connection

    conn = Connection.objects.get(capability__worker__slug=SLUG, capability__key=KEY)
    now = timezone.now()
    conn.status = Connection.Status.CONNECTED
    conn.access_token, conn.refresh_token, conn.has_refresh_token = "stale-" + "s" * 34, "r" * 40, True
    conn.expires_at, conn.connected_at = now - timedelta(minutes=1), now - timedelta(hours=2)
    conn.last_error = ""
    conn.save()


def _caller_process(
    ready: multiprocessing.Queue,
    start_at: multiprocessing.sharedctypes.Synchronized,
    results: multiprocessing.Queue,
    warm: bool,
) -> None:
    from django.db import connection

    from connections.oauth.tokens import access_token

    tokens: list[str] = []
    errors: list[str] = []
    done: list[float] = []
    late: list[float] = []

    def call() -> None:
        try:
            # Before the start, as in a worker that has run tasks before: connected, and its
            # connection has handed out a token (PostgreSQL loaded the tables' catalog entries).
            # Cold: only connected, as a worker's first task after it started.
            if warm:
                access_token(SLUG, WARM_KEY)
            else:
                connection.ensure_connection()
            ready.put(None)
            while not start_at.value:
                time.sleep(0.005)
            # Every caller sleeps until the same instant on the (system-wide) monotonic clock and
            # wakes on its own timer, as independent callers do.
            time.sleep(max(0.0, start_at.value - time.perf_counter()))
            late.append(time.perf_counter() - start_at.value)
            tokens.append(access_token(SLUG, KEY))
            done.append(time.perf_counter())  # the caller has its token: closing is not measured
        except Exception as exc:  # reported to the parent, which fails the benchmark
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((tokens, errors, max(done, default=0.0), max(late, default=0.0)))


def _callers(fork: multiprocessing.context.BaseContext, *, warm: bool = True) -> tuple[float, float, float]:
    """Seconds from the common start until every caller of every process has its token, the
    latest caller's lateness at the start, and when the refresh request reached the provider.

    Measured like the lone refresh, from the call to the token: not the start signal's delivery
    (a multiprocessing.Event wakes its 64 waiters one after another, each needing its process's
    GIL, which took up to 0.3 s once the first callers were busy), nor closing connections, joining
    threads and sending the results back.
    """
    from django.db import connections

    connections.close_all()  # a forked child must not share this process's connection
    ready, results = fork.Queue(), fork.Queue()
    start_at = fork.Value("d", 0.0)
    children = [fork.Process(target=_caller_process, args=(ready, start_at, results, warm)) for _ in range(PROCESSES)]
    for child in children:
        child.start()
    for _ in range(PROCESSES * THREADS):
        ready.get(timeout=120)  # every caller connected
    time.sleep(0.5)  # and sleeping on start_at
    start_at.value = started = time.perf_counter() + 0.5
    tokens, errors, finished, late = [], [], started, 0.0
    for _ in children:
        got, failed, done, lateness = results.get(timeout=120)
        tokens += got
        errors += failed
        finished, late = max(finished, done), max(late, lateness)
    for child in children:
        child.join(timeout=30)
    if errors or len(tokens) != PROCESSES * THREADS or len(set(tokens)) != 1:
        raise RuntimeError(f"{len(tokens)} tokens ({len(set(tokens))} different), errors: {errors[:3]}")
    return finished - started, late, _Endpoint.arrived - started


def run(ctx: Context) -> None:
    from connections.oauth.tokens import access_token

    rounds = ctx.scale(5, 2)
    fork = multiprocessing.get_context("fork")
    lone, stampede, requests, fresh, late, cold, arrivals = [], [], [], [], [], [], []
    with _token_endpoint() as url:
        _setup(url)
        for _ in range(rounds):
            _expire()
            _Endpoint.requests = 0
            started = time.perf_counter()
            access_token(SLUG, KEY)
            lone.append(time.perf_counter() - started)
            assert _Endpoint.requests == 1

            _expire()
            _Endpoint.requests = 0
            took, lateness, asked = _callers(fork)
            stampede.append(took)
            arrivals.append(asked)
            requests.append(_Endpoint.requests)
            took, _, _ = _callers(fork)  # the token is now fresh: what 64 callers cost without a refresh
            fresh.append(took)
            late.append(lateness)

            _expire()  # again, with callers whose connections have not run a query yet
            _Endpoint.requests = 0
            took, _, _ = _callers(fork, warm=False)
            cold.append(took)
            requests.append(_Endpoint.requests)
    lone_s, stampede_s, cold_s = (sorted(times)[len(times) // 2] for times in (lone, stampede, cold))
    callers = PROCESSES * THREADS
    ctx.figure(
        f"refresh requests for {callers} callers of one expired token",
        ratio=max(requests) / 1,
        baseline="one refresh request",
        target=1,
        detail=f"requests per round: {requests}; token endpoint answering in {DELAY * 1000:.0f} ms",
    )
    ctx.figure(
        f"wall time of {callers} callers ({PROCESSES} processes x {THREADS} threads) of one expired token",
        ratio=stampede_s / lone_s,
        baseline=f"one lone refresh ({lone_s * 1000:.0f} ms)",
        target=1.5,
        detail=(
            f"{stampede_s * 1000:.0f} ms, median of {rounds} rounds; the same callers of a fresh token "
            f"(no refresh, no lock): {sorted(fresh)[len(fresh) // 2] * 1000:.0f} ms; the last caller to start "
            f"began up to {max(late) * 1000:.0f} ms late (waiting for its process's GIL); the refresh request "
            f"reached the provider {', '.join(f'{s * 1000:.0f}' for s in arrivals)} ms after the start; "
            f"rounds: {', '.join(f'{s * 1000:.0f}' for s in stampede)} ms, lone: {', '.join(f'{s * 1000:.0f}' for s in lone)} ms; "
            f"callers whose connections had run no query yet (a worker's first task): {cold_s * 1000:.0f} ms, "
            f"{cold_s / lone_s:.2f}x"
        ),
    )
