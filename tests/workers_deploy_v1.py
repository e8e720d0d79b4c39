"""A test worker, first version: two OAuth capabilities and a sync for every kind of schedule."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, j, schema

worker = Worker("deploytest")

main_auth = worker.oauth(
    "mainAuth",
    name="main-oauth",
    authorization_endpoint="https://auth.example.test/authorize",
    token_endpoint="https://auth.example.test/token",
    scope="read",
    client_id=worker.env("DT_CLIENT_ID"),
    client_secret=worker.env("DT_CLIENT_SECRET"),
)

extra_auth = worker.oauth(
    "extraAuth",
    name="extra-oauth",
    authorization_endpoint="https://extra.example.test/authorize",
    token_endpoint="https://extra.example.test/token",
    scope="read write",
    client_id=worker.env("DT_EXTRA_ID"),
    client_secret=worker.env("DT_EXTRA_SECRET"),
    authorization_params={"access_type": "offline"},
    access_token_expire_ms=3_600_000,
)

items = worker.database(
    "items", title="Items", primary_key="ID", properties={"Name": schema.title(), "ID": schema.rich_text()}
)


@worker.tool("ping", title="Ping", description="Answers pong", schema=j.object({}))
def ping(input: dict[str, Any], context: Any) -> str:
    return "pong"


def _empty(state: Any, context: Any) -> dict[str, Any]:
    return {"changes": [], "has_more": False}


worker.sync("every15", database=items, schedule="15m")(_empty)
worker.sync("hourly", database=items, schedule="1h")(_empty)
worker.sync("nightly", database=items, schedule="30 2 * * *")(_empty)
worker.sync("byHand", database=items, schedule="manual")(_empty)
