"""The Celery app: `celery -A workers_site worker` / `celery -A workers_site beat`."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.fixups import django as django_fixup
from celery.signals import after_setup_logger, after_setup_task_logger, worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")


class KeptConnections(django_fixup.DjangoWorkerFixup):
    """Celery's Django fix-up, except that a task keeps the process's database connection.

    Celery closes every connection before and after each task whatever CONN_MAX_AGE says. Here a
    pool process gives its connections CELERY_WORKER_CONN_MAX_AGE, and around each task closes
    only those past it, broken or unusable: what Django does around each request. A pool process
    still drops what it inherited from its parent (on_worker_process_init, unchanged).
    """

    def on_worker_process_init(self, **kwargs: Any) -> None:
        for conn in self._db.connections.all():
            # One kept connection per pool process; a connection pool (the web server's,
            # WORKERS_DATABASE_POOL) would only add idle ones, and Django refuses both together.
            # Dropped first, so the inherited connection is not handed back to the parent's pool.
            conn.settings_dict.get("OPTIONS", {}).pop("pool", None)
        super().on_worker_process_init(**kwargs)
        from django.conf import settings

        for conn in self._db.connections.all():
            if conn.vendor != "sqlite":
                conn.settings_dict["CONN_MAX_AGE"] = settings.CELERY_WORKER_CONN_MAX_AGE
        _load_and_settle()

    def close_database(self, **kwargs: Any) -> None:
        for conn in self._db.connections.all(initialized_only=True):
            try:
                conn.close_if_unusable_or_obsolete()
            except self.interface_errors:
                pass


def _load_and_settle() -> None:
    """The worker code imported, then this process's objects frozen: its runs' garbage collections
    walk what they make, not Django's and the worker code's objects (connections.runtime.settle_heap).
    Last, once the connections inherited from the parent are dropped, so none of them is kept."""
    from connections import registry
    from connections.exceptions import WorkerDefinitionError
    from connections.runtime import settle_heap

    try:
        registry.load_workers()
    except WorkerDefinitionError:
        pass  # the first run that needs the code reports what is wrong with it
    settle_heap()


class KeptConnectionsFixup(django_fixup.DjangoFixup):
    """Celery's Django fix-up with KeptConnections as its worker part (made when a worker starts)."""

    @property
    def worker_fixup(self) -> django_fixup.DjangoWorkerFixup:
        if self._worker_fixup is None:
            self._worker_fixup = KeptConnections(self.app)
        return self._worker_fixup

    @worker_fixup.setter
    def worker_fixup(self, value: django_fixup.DjangoWorkerFixup) -> None:
        self._worker_fixup = value


def kept_connections_fixup(app: Celery) -> django_fixup.DjangoFixup | None:
    """What Celery's own `fixup` does, with the fix-up above (the `fixups=` of the app below)."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return None
    return KeptConnectionsFixup(app).install()


app = Celery("workers_site", fixups=[f"{__name__}:kept_connections_fixup"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The token-care tasks live beside the refresh code rather than in connections/tasks.py.
app.autodiscover_tasks(["connections.oauth"])


@worker_init.connect
def _refuse_unreadable_secrets(**_: object) -> None:
    """A worker that cannot decrypt what is stored must not start and fail every task."""
    from connections.crypto import assert_keys_can_read
    from connections.exceptions import UndecryptableValue

    try:
        assert_keys_can_read()
    except UndecryptableValue as exc:
        # Celery logs an Exception raised by a signal handler and starts anyway;
        # SystemExit is not an Exception, so it ends the process with this message.
        raise SystemExit(f"Refusing to start the Celery worker: {exc}") from None


@worker_init.connect
def _settle_heap(**_: object) -> None:
    """Django's and Celery's objects out of every later garbage collection, before the pool is forked:
    each pool process inherits them frozen (connections.runtime.settle_heap), and freezes what it
    adds once it has set up (KeptConnections.on_worker_process_init)."""
    from connections.runtime import settle_heap

    settle_heap()


# Set by `workers serve` for the worker it starts: it prints its summary once this file exists.
READY_FILE_VARIABLE = "WORKERS_SERVE_READY_FILE"


@worker_ready.connect
def _say_ready(**_: object) -> None:
    path = os.environ.get(READY_FILE_VARIABLE)
    if path:
        with open(path, "w"):
            pass


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_every_handler(**_: object) -> None:
    """Celery adds handlers of its own (the task logger's, a --logfile's) after Django configured
    logging: give each of them the same redaction, in the worker, its pool processes and beat."""
    from connections.logging import install

    install()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _format_every_handler(**_: object) -> None:
    """With LOG_FORMAT=json, Celery's own handlers write JSON lines too, like the ones Django configured."""
    from connections.conf import app_settings
    from connections.logging import use_format

    use_format(app_settings.LOG_FORMAT)
