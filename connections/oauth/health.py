"""A connection's health as the admin and `workers oauth status` show it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..models import Connection

NOT_CONNECTED = "not_connected"
CONNECTED = "connected"
EXPIRING = "expiring"
REFRESH_FAILING = "refresh_failing"
NEEDS_REAUTH = "needs_reauth"

LABELS = {
    NOT_CONNECTED: _("not connected"),
    CONNECTED: _("connected"),
    EXPIRING: _("expiring"),
    REFRESH_FAILING: _("refresh failing"),
    NEEDS_REAUTH: _("needs reauthorization"),
}

COLOURS = {
    NOT_CONNECTED: "#6b7280",
    CONNECTED: "#1a7f37",
    EXPIRING: "#b54708",
    REFRESH_FAILING: "#b42318",
    NEEDS_REAUTH: "#b42318",
}


def health(conn: Connection | None) -> str:
    """One of the states above; `expiring` is a connected token within the background refresh window.

    `matching()` below is the same rule as a query; change both together.
    """
    if conn is None or conn.status == Connection.Status.NOT_CONNECTED:
        return NOT_CONNECTED
    if conn.status in (Connection.Status.NEEDS_REAUTH, Connection.Status.REFRESH_FAILING):
        return conn.status
    if conn.expires_at is not None:
        now = timezone.now()
        if conn.expires_at <= now:
            # Refreshed on the next access_token(); without a refresh token only a reconnect helps.
            return EXPIRING if conn.has_refresh_token else NEEDS_REAUTH
        if conn.expires_at <= now + timedelta(seconds=app_settings.EXPIRING_WITHIN):
            return EXPIRING
    return CONNECTED


def matching(state: str) -> Q:
    """Capabilities whose connection is in `state`, as `health()` decides it, for querysets."""
    S = Connection.Status
    now = timezone.now()

    def q(**lookups: object) -> Q:
        return Q(**{f"connection__{name}": value for name, value in lookups.items()})

    expiring = q(status=S.CONNECTED, expires_at__lte=now + timedelta(seconds=app_settings.EXPIRING_WITHIN))
    dead = q(status=S.CONNECTED, expires_at__lte=now, has_refresh_token=False)
    if state == NOT_CONNECTED:
        return q(isnull=True) | q(status=S.NOT_CONNECTED)
    if state == CONNECTED:
        return q(status=S.CONNECTED) & ~expiring
    if state == EXPIRING:
        return expiring & ~dead
    if state == REFRESH_FAILING:
        return q(status=S.REFRESH_FAILING)
    if state == NEEDS_REAUTH:
        return q(status=S.NEEDS_REAUTH) | dead
    raise ValueError(f"unknown health state {state!r}")


def describe_time(value: datetime | None) -> str:
    """ "2026-11-27 04:46:50 UTC (in 4 minutes)" for pages and the command line."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    now = timezone.now()
    if abs((value - now).total_seconds()) < 60:
        relative = "just now" if value <= now else "in under a minute"
    else:
        relative = f"in {timeuntil(value, now)}" if value > now else f"{timesince(value, now)} ago"
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({relative})"
