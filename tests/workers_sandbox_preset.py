"""A test-only worker on the sandbox preset, with client credentials of its own names."""

from __future__ import annotations

from connections.sdk import Worker

worker = Worker("presettest")

auth = worker.oauth(
    "presetAuth",
    name="preset-sandbox",
    provider="sandbox",
    scope="read",
    client_id=worker.env("PRESET_CLIENT_ID"),
    client_secret=worker.env("PRESET_CLIENT_SECRET"),
)
