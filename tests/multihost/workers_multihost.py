"""The worker the many-machines suite deploys: a tool and a sync that note each execution in a ledger file.

The ledger (MULTIHOST_LEDGER, one JSON line per event, appended with O_APPEND so lines from
several processes never interleave) is the witness outside the database: how many times each
run's code really ran, on which node, with which token, and which sync pages were fetched.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from connections.sdk import Worker, builder, j, schema

PROVIDER = os.environ.get("MULTIHOST_PROVIDER_URL", "http://127.0.0.1:9")
SYNC_PAGES = 8

worker = Worker("multihost")

auth = worker.oauth(
    "multihostAuth",
    name="multihost-oauth",
    authorization_endpoint=f"{PROVIDER}/authorize",
    token_endpoint=f"{PROVIDER}/token",
    scope="read",
    client_id=worker.env("FAKE_CLIENT_ID"),
    client_secret=worker.env("FAKE_CLIENT_SECRET"),
)


def note(event: str, **fields: Any) -> None:
    line = json.dumps(
        {"event": event, "node": os.environ.get("MULTIHOST_NODE", ""), "pid": os.getpid(), "at": time.time(), **fields}
    )
    fd = os.open(os.environ["MULTIHOST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@worker.tool("work", schema=j.object({"n": j.integer(), "seconds": j.number().optional()}))
def work(input: dict[str, Any], context: Any) -> dict[str, Any]:
    token = auth.access_token()
    note("start", run=context.run_id, attempt=context.attempt)
    time.sleep(float(input.get("seconds", 0)))
    # A digest, not the token: enough to tell which token each run used.
    note("done", run=context.run_id, attempt=context.attempt, token=hashlib.sha256(token.encode()).hexdigest()[:16])
    return {"n": input["n"]}


items = worker.database(
    "items", title="Items", primary_key="Key", properties={"Name": schema.title(), "Key": schema.rich_text()}
)


@worker.sync("pages", database=items, schedule="manual", mode="incremental")
def pages(state: Any, context: Any) -> dict[str, Any]:
    page = int((state or {}).get("page", 0)) + 1
    note("page", run=context.run_id, page=page)
    time.sleep(float(os.environ.get("MULTIHOST_PAGE_SECONDS", "1")))
    changes = [
        {
            "type": "upsert",
            "key": f"{page}-{i}",
            "properties": {"Name": builder.title(f"item {page}-{i}"), "Key": builder.rich_text(f"{page}-{i}")},
        }
        for i in range(10)
    ]
    return {"changes": changes, "has_more": page < SYNC_PAGES, "next_state": {"page": page}}
