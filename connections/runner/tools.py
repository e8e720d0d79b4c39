"""Tools: validate the input against the tool's schema, queue a run, execute it."""

from __future__ import annotations

from typing import Any

from .. import jsondata, registry
from ..exceptions import InvalidJSONError, InvalidToolInputError
from ..models import Run, Tool
from ..sdk.jsonschema import validate
from ..sdk.worker import ToolDef
from . import runs
from .execute import perform


def _schemas(tool: Tool | ToolDef) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if isinstance(tool, Tool):
        return tool.input_schema or {}, tool.output_schema
    return tool.schema, tool.output_schema


def validate_input(tool: Tool | ToolDef, data: Any) -> Any:
    """The input, when it matches the tool's schema; InvalidToolInputError naming the field otherwise.

    The schema is the deployed row's (`Tool`), as everywhere at run time; a `ToolDef` (the code's)
    is accepted for callers that hold one. Depth and Unicode are checked first, for every entry
    point (CLI, admin, MCP, code): jsonschema walks the value recursively, and a lone surrogate
    stored in a run breaks every page showing it.
    """
    try:
        jsondata.check(data, what=f"The input for tool {tool.key}")
    except InvalidJSONError as exc:
        raise InvalidToolInputError(str(exc)) from None
    validate(_schemas(tool)[0], data, f"input for tool {tool.key}")
    return data


def validate_output(tool: Tool | ToolDef, value: Any) -> Any:
    output_schema = _schemas(tool)[1]
    if output_schema is not None:
        validate(output_schema, value, f"output of tool {tool.key}")
    return value


def tool_row(worker: str, key: str) -> Tool:
    tool = Tool.objects.select_related("worker").filter(worker__slug=worker, key=key, is_active=True).first()
    if tool is None:
        raise runs.not_in_worker(Tool, "tool", worker, key)
    return tool


# The tool row this process last read for each (worker, key). Never trusted alone: a run is queued
# from it only by an INSERT whose WHERE finds the same row still active with the same schema and
# time limit (runs.create_run_if), so a deactivated or redeployed tool is refused or re-read at once,
# whichever process deployed it. Dropped with the imported workers (registry.clear_cache).
_deployed: dict[tuple[str, str], tuple[int, Tool, runs.Condition]] = {}


def _remember(tool: Tool) -> None:
    """Keep the row read, with the SQL condition that it is still the deployed one."""
    still_deployed = Tool.objects.filter(
        pk=tool.pk,
        worker=tool.worker_id,
        worker__slug=tool.worker.slug,
        key=tool.key,
        is_active=True,
        input_schema=tool.input_schema,
        time_limit=tool.time_limit,
    )
    _deployed[(tool.worker.slug, tool.key)] = (registry.generation(), tool, runs.condition(still_deployed))


def _queue_if_current(worker: str, key: str, data: Any, trigger: str) -> Run | None:
    """The run, queued from the row read earlier if it is still the deployed one; None otherwise (no row)."""
    known = _deployed.get((worker, key))
    if known is None or known[0] != registry.generation():
        return None
    _, tool, still_deployed = known
    try:
        validate_input(tool, data)
    except InvalidToolInputError:
        return None  # perhaps against a schema since redeployed: the caller reads the row and decides
    fields = {"input": data, "tool": tool}
    return runs.create_run_if(still_deployed, Run.Kind.TOOL, tool.worker, key, trigger=trigger, **fields)


def start_tool(worker: str, key: str, data: Any, *, trigger: str, send: bool = True) -> Run:
    """Validate, record a queued run and (unless `send` is false) queue its task. No run on bad input.

    One statement in the common case: the INSERT itself checks that the tool row read earlier is
    still the deployed one (see _deployed); otherwise the row is read again and the input checked
    against it, as on the first call.
    """
    run = None
    remembered = (worker, key) in _deployed
    if remembered:
        registry.get_tool(worker, key)  # the code must still define it: refused now rather than failed in the run
        run = _queue_if_current(worker, key, data, trigger)
    if run is None:
        tool = tool_row(worker, key)  # first: its error names the worker that has such a tool
        if not remembered:
            registry.get_tool(worker, key)
        _remember(tool)
        validate_input(tool, data)  # against the deployed schema, the one the admin's Run form is built from
        # No transaction of its own: the INSERT is one statement, and send() queues the task once
        # the caller's transaction commits, or at once outside one.
        run = runs.create_run(Run.Kind.TOOL, tool.worker, key, trigger=trigger, input=data, tool=tool)
    if send:
        runs.send(run)
    return run


def execute_tool(run_id: int, *, local: bool = False) -> runs.Outcome:
    """One attempt at a tool run: input checked again (the code may have changed since), code run, output checked."""

    def body(run: Run, context: runs.RunContext) -> Any:
        tool = registry.get_tool(run.worker.slug, run.target)
        deployed = run.tool or tool  # runs queued before tools were linked to runs have none
        data = validate_input(deployed, run.input if run.input is not None else {})
        # Before the output schema walks it: too deep fails the run with this message; invalid text
        # becomes U+FFFD rather than losing the whole result.
        result = jsondata.clean(tool.func(data, context), what=f"The result of tool {tool.key}")
        return validate_output(deployed, result)

    return perform(run_id, body, local=local, echo=local)
