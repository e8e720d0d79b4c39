"""Shared fixtures: a live site with the sandbox provider, a real Celery worker, and no network but loopback."""

from __future__ import annotations

import contextlib
import glob
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests
from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "correct-horse-battery-staple-9"
# Test-only worker modules: the shared Celery worker imports them too, so tests that deploy them
# (override_settings(WORKER_MODULES=...)) can run their code through it.
TEST_WORKER_MODULES = ["tests.runner.workers_runner"]


# --- no network but loopback -------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(address: Any) -> None:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return
    host = address[0]
    if host in ("localhost",):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise RuntimeError(f"Test tried to reach {host!r}: tests may only talk to 127.0.0.1")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    _loopback_only(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    _loopback_only(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """An unplanned request to anywhere but this machine fails the test instead of reaching the network."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    from connections import registry

    registry.clear_cache()
    yield
    registry.clear_cache()


# --- the live site -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def site_url(live_server: Any) -> Iterator[str]:
    """The live server's URL, which is also PUBLIC_URL for this test session."""
    override = override_settings(PUBLIC_URL=live_server.url, CSRF_TRUSTED_ORIGINS=[live_server.url])
    override.enable()
    yield live_server.url
    override.disable()


class Site:
    """The live site with the sandbox provider set up and the example workers deployed."""

    def __init__(self, url: str) -> None:
        self.url = url

    def admin_session(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> requests.Session:
        """A requests session logged into the admin over HTTP."""
        session = requests.Session()
        page = session.get(f"{self.url}/admin/login/", timeout=10)
        token = csrf_from(page.text)
        answer = session.post(
            f"{self.url}/admin/login/",
            timeout=10,
            data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"},
        )
        assert answer.ok and "/admin/login/" not in answer.url, "admin login failed"
        return session


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def site(site_url: str, transactional_db: None) -> Site:
    """Sandbox provider registered, example workers deployed, an admin user; all over real HTTP."""
    from django.contrib.auth import get_user_model

    from connections.deploy import deploy
    from sandbox.setup import setup_sandbox

    get_user_model().objects.create_superuser("admin", "admin@example.test", ADMIN_PASSWORD)
    setup_sandbox()
    deploy()
    return Site(site_url)


# --- a real Celery worker process --------------------------------------------------------


def database_url_for_subprocess() -> str:
    """The URL of the test database this process uses, for processes started by tests."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def dead_broker() -> Iterator[str]:
    """A Redis URL whose connections are refused, as a broker that is down: a port this test holds
    bound without listening, so nothing else can take it meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{held.getsockname()[1]}/0"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, psycopg.Error, redis.RedisError, requests.RequestException):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def in_ci() -> bool:
    """Whether this is CI (CI=true), where a test that cannot run here fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _missing(what: str) -> None:
    """Skip a test for a server this machine lacks; in CI fail instead, as the browser tests do."""
    if in_ci():
        pytest.fail(f"{what}: CI must run this test")
    pytest.skip(what)


class PrivateRedis:
    """redis-server on a free port; `persistent` keeps its queues across a stop, as a broker's should."""

    def __init__(self, folder: Path, *, persistent: bool = False) -> None:
        if shutil.which("redis-server") is None:
            _missing("redis-server not installed")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: redis.Redis(port=self.port).ping(), 20, "redis-server to answer")

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): its port still takes connections, and nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server handles SIGTERM only once woken
            self.proc.send_signal(signal.SIGTERM)  # SHUTDOWN: the append-only file is written first
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _as_postgres(*command: str) -> list[str]:
    # PostgreSQL refuses to run as root; as root, its tools run as the `postgres` user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary folder, on a free port, that a test may restart."""

    def __init__(self, folder: Path) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not binaries:
            _missing("PostgreSQL server binaries not installed")
        self.bin = Path(binaries[-1])
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/workers"
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            folder.parent.chmod(0o755)  # mkdtemp's 0700 would keep the postgres user out
        subprocess.run(
            _as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
        )
        self.pg_ctl("start")
        try:
            subprocess.run(
                _as_postgres(
                    str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "workers"
                ),
                check=True,
                capture_output=True,
            )
        except BaseException:
            self.stop()  # not left running under a folder its caller is about to delete
            raise

    def pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "log"),
                "-w",
                "-m",
                "fast",
                "-o",
                options,
                action,
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def freeze(self) -> None:
        """Stop the postmaster (SIGSTOP): its port still takes connections, and nothing is answered."""
        os.kill(self.postmaster(), signal.SIGSTOP)

    def stop(self) -> None:
        """Stop the cluster, woken first if frozen (a stopped process handles no signal)."""
        try:
            os.kill(self.postmaster(), signal.SIGCONT)
        except (OSError, ValueError):
            return  # not running
        self.pg_ctl("stop")

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url.replace("postgres://", "postgresql://"), connect_timeout=5) as db:
            cursor = db.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def _frozen(server: PrivatePostgres | PrivateRedis) -> Iterator[str]:
    """The server's URL while it is stopped (SIGSTOP); stopped for good afterwards."""
    try:
        server.freeze()
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def frozen_database() -> Iterator[str]:
    """The URL of a real PostgreSQL whose postmaster has stopped answering (SIGSTOP): the kernel
    still takes connections, nothing is ever answered, as with a frozen server or a host that drops packets."""
    # Not under pytest's tmp_path, whose parents the `postgres` user may not enter.
    folder = Path(tempfile.mkdtemp(prefix="workers-frozen-pg-"))
    try:
        with _frozen(PrivatePostgres(folder / "pg")) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def frozen_broker(tmp_path: Path) -> Iterator[str]:
    """The URL of a real Redis that has stopped answering (SIGSTOP) without closing anything, as a
    frozen or failed-over server, or a host that drops packets: connections open, commands hang."""
    with _frozen(PrivateRedis(tmp_path / "redis")) as url:
        yield url


def private_broker(folder: Path) -> dict[str, str]:
    """Settings for a broker of the test's own, an embedded one in `folder`: no worker of the session
    (on the run's Redis, in the PostgreSQL half) can take its messages."""
    return {"CELERY_BROKER_URL": "filesystem://localhost//", "CELERY_BROKER_DIR": str(folder / "broker")}


def subprocess_env(site_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url_for_subprocess(),
            "PUBLIC_URL": site_url,
            "DJANGO_SETTINGS_MODULE": "workers_site.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class CeleryWorker:
    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill_host(self) -> None:
        """SIGKILL the worker and its pool processes at once, as if its machine went away."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, sig: int = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _own_host(host: str) -> list[str]:
    """A command prefix that runs a process under the host name `host` (its own UTS namespace).

    The runner tells a process on this machine from one on another by the host name in a run's
    owner: under its own name, a worker here is what a worker on another machine is to the others.
    """
    if host == socket.gethostname():
        return []
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot give a worker its own host name here (unshare --uts: {probe.stderr.strip()!r})")
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host]


def start_celery_worker(
    site_url: str,
    log: Path,
    *,
    concurrency: int = 2,
    pool: str = "prefork",
    queues: str = "",
    node: str = "",
    **env: str,
) -> CeleryWorker:
    """Start `celery -A workers_site worker` against the test database and wait until it is ready.

    `node` ("a@host1") is the worker's node name; a host part other than this machine's runs it
    under that host name, as if on another machine. `env` may replace DATABASE_URL too.
    """
    handle = log.open("w")
    host = node.rpartition("@")[2] if node else ""
    proc = subprocess.Popen(
        [
            *(_own_host(host) if host else []),
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers_site",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            node or f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            *(["-Q", queues] if queues else []),
        ],
        cwd=ROOT,
        env=subprocess_env(site_url, **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, so kill_host() can end the worker and its pool together.
        start_new_session=True,
    )
    worker = CeleryWorker(proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "ready." in worker.output():
            return worker
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited ({proc.returncode}):\n{worker.output()[-3000:]}")
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"celery worker not ready after 60 s:\n{worker.output()[-3000:]}")


@pytest.fixture(scope="session")
def celery_worker(
    site_url: str, django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    """One real worker process for the session, on the configured broker (embedded or Redis)."""
    from workers_site.celery import app

    with django_db_blocker.unblock():
        app.control.purge()
        worker = start_celery_worker(
            site_url,
            tmp_path_factory.mktemp("celery") / "worker.log",
            WORKER_MODULES=",".join([*settings.WORKER_MODULES, *TEST_WORKER_MODULES]),
        )
    yield worker
    worker.stop()


@pytest.fixture
def broker_kind() -> str:
    return "redis" if settings.CELERY_BROKER_URL.startswith("redis") else "embedded"
