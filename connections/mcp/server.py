"""The MCP server (the SDK's low-level `Server`): tools/list, tools/call, database schema resources.

One builder serves both transports: over Streamable HTTP the key comes from the request (checked by
`connections.mcp.asgi`), over stdio it is the named key `workers mcp --key` was started with.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError

from ..conf import app_settings
from ..exceptions import InvalidApiKey, InvalidToolInputError, WorkerNotFound
from ..models import ApiKey
from ..runner.cancel import withdraw_unsent
from . import calls, catalog, databases, keys

logger = logging.getLogger("connections.mcp")

SCOPE_KEY = "workers.api_key_id"  # set in the ASGI scope by the bearer check
INSTRUCTIONS = (
    "Tools of the workers deployed on this site, named <worker>__<tool>, and a <worker>__<database>__query "
    "tool per synced database. Each tool call is recorded as a run; OAuth connections stay on the site."
)


def _key_id(ctx: ServerRequestContext[Any, Any], fixed: int | None) -> int:
    if fixed is not None:
        return fixed
    request = ctx.request
    scope = getattr(request, "scope", None) or {}
    if SCOPE_KEY not in scope:  # cannot happen behind the bearer check; refuse rather than serve unscoped
        raise MCPError(-32001, "No API key on this request.")
    return int(scope[SCOPE_KEY])


async def _key(ctx: ServerRequestContext[Any, Any], fixed: int | None) -> ApiKey:
    try:
        return await calls.in_thread(keys.refresh, _key_id(ctx, fixed))
    except InvalidApiKey as exc:
        raise MCPError(-32001, str(exc)) from None


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _tool(entry: catalog.Entry) -> types.Tool:
    # MCP accepts only an object type as outputSchema; a tool returning something else gets text alone.
    output = entry.output_schema if (entry.output_schema or {}).get("type") == "object" else None
    return types.Tool(
        name=entry.name,
        title=entry.title,
        description=entry.description or entry.title,
        input_schema=entry.input_schema,
        output_schema=output,
        annotations=types.ToolAnnotations(title=entry.title, **entry.annotations),
    )


def _schema_uri(worker: str, key: str) -> str:
    return databases.SCHEMA_URI.format(worker=worker, key=key)


def build_server(*, key_id: int | None = None) -> Server[Any]:
    """The server; `key_id` fixes the key (stdio), otherwise each request's bearer key applies (HTTP)."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        key = await _key(ctx, key_id)
        entries = await calls.in_thread(catalog.visible, key)
        return types.ListToolsResult(tools=[_tool(entry) for entry in entries])

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        key = await _key(ctx, key_id)
        entry = await calls.in_thread(catalog.find, key, params.name)
        if entry is None:
            # Unknown and out of scope answer alike: a key cannot learn what it may not call.
            return _error(f"No tool {params.name!r} is available to this API key ({key.name}).")
        arguments = params.arguments if params.arguments is not None else {}
        if entry.kind == "query":
            try:
                result = await calls.in_thread(databases.query, entry.worker, entry.key, arguments, entry.name)
            except (InvalidToolInputError, WorkerNotFound) as exc:
                return _error(str(exc))
            return _result(False, result, None)
        try:
            run, done = await calls.in_thread(calls.start, entry, arguments, key)
        except (InvalidToolInputError, WorkerNotFound) as exc:
            return _error(str(exc))

        async def report(progress: float, message: str) -> None:
            # A no-op unless the client asked for progress (a progress token, in either protocol era).
            await ctx.session.report_progress(progress, message=message)

        timeout = app_settings.MCP_CALL_TIMEOUT
        try:
            # Nothing reaches a worker until the broker answers: waiting would only time out, and the
            # run must not start later, after the client has given up (or called again).
            by = f"the MCP server (API key {key.name}; the broker did not take it)"
            if run.unsent and await calls.in_thread(withdraw_unsent, run, by):
                # The broker's address and error stay in the server's log: the caller is outside the site.
                return _error(
                    f"Run #{run.pk} could not be queued (the task queue is unavailable), so nothing ran. "
                    "Try again later."
                )
            finished = await calls.wait(run.pk, report, timeout, done)
        except anyio.get_cancelled_exc_class():
            # The client cancelled the request (or went away): the run must not start after all.
            with anyio.CancelScope(shield=True):
                await calls.in_thread(calls.cancel, run.pk, key.name)
            raise
        if finished is None:
            return _error(
                f"Run #{run.pk} did not finish within {timeout:g} s; it goes on (is a Celery worker running?). "
                "Follow it in the admin's runs or with `python manage.py workers runs`."
            )
        is_error, structured, text = await calls.in_thread(calls.outcome, finished)
        if is_error:
            return _error(text)
        return _result(False, structured, text)

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        key = await _key(ctx, key_id)
        entries = await calls.in_thread(catalog.visible, key)
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=f"{entry.worker}/{entry.key} schema",
                    title=f"Schema of {entry.title.removeprefix('Query ')}",
                    uri=_schema_uri(entry.worker, entry.key),
                    description=f"Properties of the database {entry.worker}/{entry.key}, for {entry.name}.",
                    mime_type="application/json",
                )
                for entry in entries
                if entry.kind == "query"
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        key = await _key(ctx, key_id)
        entries = await calls.in_thread(catalog.visible, key)
        uri = str(params.uri)
        for entry in entries:
            if entry.kind == "query" and _schema_uri(entry.worker, entry.key) == uri:
                document = await calls.in_thread(_schema_document, entry.worker, entry.key)
                return types.ReadResourceResult(
                    contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=document)]
                )
        raise MCPError(-32002, f"No resource {uri!r} is available to this API key.")

    return Server(
        "workers",
        title="Notion-style workers",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def _schema_document(worker: str, key: str) -> str:
    return json.dumps(databases.schema_document(databases.database_row(worker, key)), ensure_ascii=False, indent=2)


def _result(is_error: bool, structured: Any, text: str | None) -> types.CallToolResult:
    if text is None:
        text = json.dumps(structured, ensure_ascii=False, indent=2)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=structured if isinstance(structured, dict) else None,
        is_error=is_error,
    )
