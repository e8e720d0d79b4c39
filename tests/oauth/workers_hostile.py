"""A test-only worker whose tool calls an API through `capability.session()`, for `workers exec --local`.

Its endpoints are never called: the tests store a connected token for it directly.
"""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, j

worker = Worker("hostile")

api_auth = worker.oauth(
    "hostileAuth",
    name="hostile-oauth",
    authorization_endpoint="http://127.0.0.1:9/authorize",
    token_endpoint="http://127.0.0.1:9/token",
    scope="read",
    client_id="hostile-client-id",
    client_secret="hostile-client-secret",
)


@worker.tool("callApi", schema=j.object({"url": j.string()}))
def call_api(input: dict[str, Any], context: Any) -> Any:
    response = api_auth.session().get(input["url"])
    response.raise_for_status()  # a 429 becomes a retry, after its (capped) Retry-After
    return response.json()
