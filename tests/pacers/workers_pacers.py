"""A test-only worker whose tools call a local API through a pacer."""

from __future__ import annotations

import time
from typing import Any

from connections.sdk import Worker, j

worker = Worker("pacer-test")

api = worker.pacer("api", allowed_requests=10, interval_ms=1000)

# Only ever used with a token pulled into the environment (--local), never connected.
api_auth = worker.oauth(
    "apiAuth",
    name="pacer-test-api",
    authorization_endpoint="http://127.0.0.1:9/authorize",
    token_endpoint="http://127.0.0.1:9/token",
    scope="read",
    client_id="pacer-test",
    client_secret=worker.env("API_CLIENT_SECRET"),
)


@worker.tool(
    "hammer",
    schema=j.object({"url": j.string(), "caller": j.string(), "start": j.number(), "until": j.number()}),
)
def hammer(input: dict[str, Any], context: Any) -> dict[str, Any]:
    """From `start` to `until` (epoch seconds), call the API as fast as the pacer lets; report each wait."""
    session = api.session()
    time.sleep(max(0.0, input["start"] - time.time()))
    waits: list[float] = []
    statuses: dict[str, int] = {}
    while time.time() < input["until"]:
        began = time.monotonic()
        # The session waits its turn (and sits out a 429's pause); the request itself is a few ms.
        response = session.get(input["url"], headers={"X-Caller": input["caller"]}, timeout=10)
        waits.append(time.monotonic() - began)
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return {"waits": waits, "statuses": statuses}


@worker.tool("once", schema=j.object({}))
def once(input: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"waited": api.wait()}
