"""Tools: validate the input against the tool's schema, queue a run, execute it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .. import jsondata, registry
from ..exceptions import InvalidJSONError, InvalidToolInputError
from ..models import Run, Tool
from ..sdk.worker import ToolDef
from . import runs
from .execute import perform


def _field_of(error: ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            return f"{path}.{missing[0]}" if path else str(missing[0])
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        if extra:
            return f"{path}.{extra[0]}" if path else str(extra[0])
    return path


def _check(schema: dict[str, Any], value: Any, what: str) -> None:
    error = best_match(Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return
    field = _field_of(error)
    if error.validator == "required" and field:
        reason = "is required"
    elif error.validator == "additionalProperties" and field:
        reason = "is not an accepted field"
    else:
        reason = error.message
    where = f'field "{field}"' if field else "the value"
    raise InvalidToolInputError(f"Invalid {what}: {where} {reason}.", field=field)


def validate_input(tool: ToolDef, data: Any) -> Any:
    """The input, when it matches the tool's schema; InvalidToolInputError naming the field otherwise.

    Depth and Unicode are checked first, for every entry point (CLI, admin, MCP, code): jsonschema
    walks the value recursively, and a lone surrogate stored in a run breaks every page showing it.
    """
    try:
        jsondata.check(data, what=f"The input for tool {tool.key}")
    except InvalidJSONError as exc:
        raise InvalidToolInputError(str(exc)) from None
    _check(tool.schema, data, f"input for tool {tool.key}")
    return data


def validate_output(tool: ToolDef, value: Any) -> Any:
    if tool.output_schema is not None:
        _check(tool.output_schema, value, f"output of tool {tool.key}")
    return value


def tool_row(worker: str, key: str) -> Tool:
    tool = Tool.objects.select_related("worker").filter(worker__slug=worker, key=key, is_active=True).first()
    if tool is None:
        raise runs.not_in_worker(Tool, "tool", worker, key)
    return tool


def start_tool(worker: str, key: str, data: Any, *, trigger: str, send: bool = True) -> Run:
    """Validate, record a queued run and (unless `send` is false) queue its task. No run on bad input."""
    tool = tool_row(worker, key)
    validate_input(registry.get_tool(worker, key), data)
    with transaction.atomic():
        run = runs.create_run(Run.Kind.TOOL, tool.worker, key, trigger=trigger, input=data, tool=tool)
        if send:
            runs.send(run)
    return run


def execute_tool(run_id: int, *, local: bool = False) -> runs.Outcome:
    """One attempt at a tool run: input checked again (the code may have changed since), code run, output checked."""

    def body(run: Run, context: runs.RunContext) -> Any:
        tool = registry.get_tool(run.worker.slug, run.target)
        data = validate_input(tool, run.input if run.input is not None else {})
        # Before the output schema walks it: too deep fails the run with this message; invalid text
        # becomes U+FFFD rather than losing the whole result.
        result = jsondata.clean(tool.func(data, context), what=f"The result of tool {tool.key}")
        return validate_output(tool, result)

    return perform(run_id, body, local=local, echo=local)
