"""`capability.session()`: a requests session that sends the bearer token and survives one 401."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from ..conf import app_settings
from ..runtime import is_local

if TYPE_CHECKING:
    from ..sdk.worker import OAuthCapability, Pacer


class AuthorizedSession(requests.Session):
    """Adds `Authorization: Bearer <token>`; on a 401 refreshes once and retries the request once.

    Every request without a timeout of its own gets WORKERS_SESSION_TIMEOUT. A 429's
    `Retry-After` is read by the runner (`raise_for_status()` in the tool), capped at
    WORKERS_RETRY_AFTER_MAX.

    A provider may revoke or shorten a token before the expiry it announced; the retry covers that
    without a refresh storm: the refresh goes through the same lock as every other one, and a token
    already replaced by another caller is simply reused.
    """

    def __init__(self, capability: OAuthCapability, pacer: Pacer | None = None) -> None:
        super().__init__()
        self.capability = capability
        self.pacer = pacer  # when set, every request (a 401 retry too) waits its turn: connections/pacers.py

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # requests waits forever by default; a worker's call to a stuck API must not. A timeout the
        # caller passes (by keyword, or as the 7th positional argument) is theirs to choose.
        if "timeout" not in kwargs and len(args) < 7:
            kwargs["timeout"] = app_settings.SESSION_TIMEOUT
        token = self.capability.access_token()
        response = self._send_with(token, method, url, *args, **kwargs)
        if response.status_code != 401:
            return response
        from .tokens import connection_row, refresh_connection

        if is_local():
            return response  # a pulled token cannot be refreshed from here: run `workers env pull` again
        conn = connection_row(self.capability.worker, self.capability.key)
        fresh = refresh_connection(conn.pk, stale_token=token)
        response.close()
        return self._send_with(fresh, method, url, *args, **kwargs)

    def _send_with(
        self, token: str, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {token}"
        send = super().request
        if self.pacer is not None:
            from ..pacers import send_paced

            return send_paced(self.pacer, lambda: send(method, url, *args, headers=headers, **kwargs))
        return send(method, url, *args, headers=headers, **kwargs)
