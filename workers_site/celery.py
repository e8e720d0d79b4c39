"""The Celery app: `celery -A workers_site worker` / `celery -A workers_site beat`."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

app = Celery("workers_site")
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
