"""Beat's scheduler: django-celery-beat's DatabaseScheduler, leaving a heartbeat file for the health check."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger("connections.beat")


class HeartbeatScheduler(DatabaseScheduler):
    """Touches WORKERS_BEAT_HEARTBEAT_FILE on every tick (at least every `max_interval`, 5 s).

    Beat answers no `inspect ping` (it is not a worker), and a live process may still be stuck:
    a file whose age grows only while the scheduling loop turns is what its health check reads.
    """

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = super().tick(*args, **kwargs)
        self._touch_heartbeat()
        return interval

    def _touch_heartbeat(self) -> None:
        from connections.conf import app_settings

        path = app_settings.BEAT_HEARTBEAT_FILE
        if not path:
            return
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch()
        except OSError as exc:  # the health check then fails; scheduling goes on, and this is said once
            if not getattr(self, "_heartbeat_warned", False):
                self._heartbeat_warned = True
                logger.warning("Could not touch the beat heartbeat file %s: %s", path, exc)
