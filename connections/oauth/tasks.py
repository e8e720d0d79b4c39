"""Background care of tokens, run by Celery beat: refresh before expiry, and keep idle refresh tokens alive."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from ..conf import app_settings
from ..models import AuthorizationAttempt, Connection
from .tokens import refresh_for_care

logger = logging.getLogger(__name__)


@shared_task(name="connections.oauth.refresh_expiring_tokens", ignore_result=True)
def refresh_expiring_tokens() -> dict[str, int]:
    """Refresh tokens that expire within WORKERS_EXPIRING_WITHIN, so tools rarely wait for a refresh."""
    window = timedelta(seconds=app_settings.EXPIRING_WITHIN)
    counts = {"refreshed": 0, "skipped": 0, "failed": 0}
    for pk in Connection.objects.expiring(window).values_list("pk", flat=True):
        counts[refresh_for_care(pk, valid_for=window)] += 1
    return counts


@shared_task(name="connections.oauth.keep_refresh_tokens_alive", ignore_result=True)
def keep_refresh_tokens_alive() -> dict[str, int]:
    """Providers revoke refresh tokens left unused; exercise those idle for WORKERS_REFRESH_IDLE_SECONDS."""
    idle = timedelta(seconds=app_settings.REFRESH_IDLE_SECONDS)
    counts = {"refreshed": 0, "skipped": 0, "failed": 0}
    for pk in Connection.objects.idle(idle).values_list("pk", flat=True):
        # Re-checked under the lock, so an overlapping run or a redelivered task does not rotate twice.
        counts[refresh_for_care(pk, idle_before=timezone.now() - idle)] += 1
    return counts


@shared_task(name="connections.oauth.purge_authorization_attempts", ignore_result=True)
def purge_authorization_attempts() -> int:
    """Attempts older than a day are of no use to anyone (their verifier is already blanked)."""
    deleted, _ = AuthorizationAttempt.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)).delete()
    return deleted
