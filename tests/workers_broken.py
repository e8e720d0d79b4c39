"""A worker module with a definition mistake: a database property of a type Notion does not have."""

from __future__ import annotations

from connections.sdk import Worker, schema

worker = Worker("broken")

worker.database(
    "tasks", title="Tasks", primary_key="Name", properties={"Name": schema.title(), "Due": schema.formula()}
)
