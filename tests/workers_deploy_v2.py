"""The same test worker, second version: `extraAuth` and the `hourly` sync were removed from the code."""

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

items = worker.database(
    "items", title="Items", primary_key="ID", properties={"Name": schema.title(), "ID": schema.rich_text()}
)


@worker.tool("ping", title="Ping", description="Answers pong", schema=j.object({}))
def ping(input: dict[str, Any], context: Any) -> str:
    return "pong"


def _empty(state: Any, context: Any) -> dict[str, Any]:
    return {"changes": [], "has_more": False}


worker.sync("every15", database=items, schedule="15m")(_empty)
worker.sync("nightly", database=items, schedule="30 2 * * *")(_empty)
worker.sync("byHand", database=items, schedule="manual")(_empty)
