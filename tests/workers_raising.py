"""A worker module that raises an ordinary exception while it is imported (an empty j.enum())."""

from __future__ import annotations

from connections.sdk import Worker, j

worker = Worker("raising")

worker.tool("pick", schema=j.object({"colour": j.enum()}))(lambda input, context: input)
