"""`j`: a small JSON Schema builder in the style of @notionhq/workers' schema-builder."""

from __future__ import annotations

from typing import Any


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
