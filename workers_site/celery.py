"""The Celery app: `celery -A workers_site worker` / `celery -A workers_site beat`."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_site.settings")

app = Celery("workers_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_unreadable_secrets(**_: object) -> None:
    """A worker that cannot decrypt what is stored must not start and fail every task."""
    from connections.crypto import assert_keys_can_read

    assert_keys_can_read()
