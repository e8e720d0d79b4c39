"""JSON Schema, in one place: `j`, the builder in the style of @notionhq/workers' schema-builder, and
the rules the site applies to schemas (is it valid, does a value match it naming the field, what type a
node holds for a form)."""

from __future__ import annotations

from typing import Any

# Private names: this module is `j` in worker code, whose namespace should hold the builders.
from jsonschema import Draft202012Validator as _Validator
from jsonschema.exceptions import SchemaError as _SchemaError
from jsonschema.exceptions import ValidationError as _ValidationError
from jsonschema.exceptions import best_match as _best_match

from ..exceptions import InvalidToolInputError as _InvalidInput


class Schema(dict):
    """A JSON Schema document that remembers whether it is optional inside `j.object`."""

    is_optional: bool = False

    def optional(self) -> Schema:
        copy = Schema(self)
        copy.is_optional = True
        return copy

    def describe(self, description: str) -> Schema:
        copy = Schema(self, description=description)
        copy.is_optional = self.is_optional
        return copy


def _node(base: dict[str, Any], description: str | None, **extra: Any) -> Schema:
    node = Schema(base)
    for key, value in extra.items():
        if value is not None:
            node[key] = value
    if description:
        node["description"] = description
    return node


def string(
    description: str | None = None,
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    format: str | None = None,
) -> Schema:
    return _node(
        {"type": "string"}, description, minLength=min_length, maxLength=max_length, pattern=pattern, format=format
    )


def number(description: str | None = None, *, minimum: float | None = None, maximum: float | None = None) -> Schema:
    return _node({"type": "number"}, description, minimum=minimum, maximum=maximum)


def integer(description: str | None = None, *, minimum: int | None = None, maximum: int | None = None) -> Schema:
    return _node({"type": "integer"}, description, minimum=minimum, maximum=maximum)


def boolean(description: str | None = None) -> Schema:
    return _node({"type": "boolean"}, description)


def array(
    items: dict[str, Any], description: str | None = None, *, min_items: int | None = None, max_items: int | None = None
) -> Schema:
    return _node({"type": "array", "items": dict(items)}, description, minItems=min_items, maxItems=max_items)


def enum(*values: Any, description: str | None = None) -> Schema:
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = tuple(values[0])
    if not values:
        raise ValueError("j.enum() needs at least one value")
    return _node({"enum": list(values)}, description)


def nullable(inner: dict[str, Any]) -> Schema:
    node = Schema({"anyOf": [dict(inner), {"type": "null"}]})
    node.is_optional = getattr(inner, "is_optional", False)
    return node


def optional(inner: dict[str, Any]) -> Schema:
    return Schema(inner).optional()


def object(
    properties: dict[str, dict[str, Any]] | None = None,
    description: str | None = None,
    *,
    additional_properties: bool = False,
) -> Schema:
    properties = properties or {}
    required = [name for name, node in properties.items() if not getattr(node, "is_optional", False)]
    node = Schema(
        {
            "type": "object",
            "properties": {name: dict(value) for name, value in properties.items()},
            "additionalProperties": additional_properties,
        }
    )
    if required:
        node["required"] = required
    if description:
        node["description"] = description
    return node


# --- the rules the site applies (worker code rarely needs them) -----------------------------


def schema_error(value: Any) -> str | None:
    """Why `value` is not a JSON Schema document the site accepts, or None when it is one."""
    if not isinstance(value, dict):
        return "must be a JSON Schema object (use j.object(...))"
    try:
        _Validator.check_schema(value)
    except _SchemaError as exc:
        return f"is not a valid JSON Schema: {exc.message}"
    return None


def _field_of(error: _ValidationError) -> str:
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


def validate(schema: dict[str, Any], value: Any, what: str) -> None:
    """InvalidToolInputError naming the field (`Invalid {what}: field "x" is required.`) unless `value` matches."""
    error = _best_match(_Validator(schema).iter_errors(value))
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
    raise _InvalidInput(f"Invalid {what}: {where} {reason}.", field=field)


def node_type(node: dict[str, Any]) -> tuple[str | None, bool]:
    """(JSON type, nullable) of a schema node, seeing through nullable()'s anyOf; None when not one type."""
    if "anyOf" in node:
        kinds = [option.get("type") for option in node["anyOf"] if isinstance(option, dict)]
        nullable = "null" in kinds
        rest = [kind for kind in kinds if kind != "null"]
        return (rest[0] if len(rest) == 1 else None), nullable
    kind = node.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        return (rest[0] if len(rest) == 1 else None), "null" in kind
    return kind, False
