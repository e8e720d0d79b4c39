"""The guide's Google example: offline access with re-consent."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, j

worker = Worker("google")

google_auth = worker.oauth(
    "googleAuth",
    name="google-oauth",
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
    revocation_endpoint="https://oauth2.googleapis.com/revoke",
    scope="https://www.googleapis.com/auth/calendar.readonly",
    client_id=worker.env("GOOGLE_CLIENT_ID"),
    client_secret=worker.env("GOOGLE_CLIENT_SECRET"),
    authorization_params={"access_type": "offline", "prompt": "consent"},
)


@worker.tool(
    "listCalendars",
    title="List calendars",
    description="The user's calendars",
    schema=j.object({}),
    hints={"read_only": True},
)
def list_calendars(input: dict[str, Any], context: Any) -> Any:
    response = google_auth.session().get("https://www.googleapis.com/calendar/v3/users/me/calendarList", timeout=15)
    response.raise_for_status()
    return response.json()
