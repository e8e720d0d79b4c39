"""A worker on the built-in sandbox provider: connect and run it with no internet."""

from __future__ import annotations

from typing import Any

from connections.sdk import Worker, builder, j, schema

worker = Worker("sandbox")

sandbox_auth = worker.oauth(
    "sandboxAuth",
    name="sandbox-oauth",
    provider="sandbox",  # endpoints on this site, under /sandbox/
    scope="read items",
    client_id=worker.env("SANDBOX_CLIENT_ID"),
    client_secret=worker.env("SANDBOX_CLIENT_SECRET"),
)


def api(path: str) -> str:
    from connections.conf import app_settings

    return f"{app_settings.PUBLIC_URL}/sandbox/api/{path}"


@worker.tool(
    "getMe",
    title="Who am I",
    description="The sandbox user the connection acts for",
    schema=j.object({}),
    hints={"read_only": True},
)
def get_me(input: dict[str, Any], context: Any) -> Any:
    response = sandbox_auth.session().get(api("me"), timeout=10)
    response.raise_for_status()
    return response.json()


items = worker.database(
    "items",
    title="Sandbox items",
    primary_key="Item ID",
    properties={"Title": schema.title(), "Item ID": schema.rich_text(), "Status": schema.select()},
)


@worker.sync("itemsSync", database=items, schedule="15m", mode="incremental")
def sync_items(state: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    state = state or {}
    params: dict[str, Any] = {"after": state.get("after", 0), "limit": 10}
    if state.get("since"):
        params["since"] = state["since"]
    response = sandbox_auth.session().get(api("items"), params=params, timeout=10)
    response.raise_for_status()
    page = response.json()
    changes = []
    for item in page["items"]:
        if item["deleted"]:
            changes.append({"type": "delete", "key": str(item["id"])})
        else:
            changes.append(
                {
                    "type": "upsert",
                    "key": str(item["id"]),
                    "properties": {
                        "Title": builder.title(item["title"]),
                        "Item ID": builder.rich_text(str(item["id"])),
                        "Status": builder.select(item["status"]),
                    },
                }
            )
    latest = max([state.get("latest", "")] + [item["updated_at"] for item in page["items"]])
    if page["has_more"]:
        next_state = {**state, "after": page["next_after"], "latest": latest}
    else:
        # The cycle is done: the next one lists what changed since the newest item seen.
        next_state = {"since": latest or state.get("since"), "after": 0, "latest": ""}
    return {"changes": changes, "has_more": page["has_more"], "next_state": next_state}
