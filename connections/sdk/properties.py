"""`schema` (property types of a synced database) and `builder` (property values), one helper per type."""

from __future__ import annotations

import datetime as dt
from typing import Any

PROPERTY_TYPES = (
    "title",
    "rich_text",
    "number",
    "checkbox",
    "date",
    "url",
    "email",
    "phone_number",
    "select",
    "multi_select",
    "status",
    "people",
    "relation",
    "files",
)


# The TypeScript SDK's camelCase spellings, accepted so examples port unchanged.
_ALIASES = {"richText": "rich_text", "phoneNumber": "phone_number", "multiSelect": "multi_select"}


class _SchemaHelpers:
    """`schema.title()`, `schema.select(options=[...])`, ... return property declarations."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        # An unknown type (schema.formula()) is declared anyway: worker.database() rejects it
        # with the worker and database key in the message, which an AttributeError here cannot name.
        kind = _ALIASES.get(name, name)

        def declare(**options: Any) -> dict[str, Any]:
            return {"type": kind, **options}

        declare.__name__ = name
        return declare


schema = _SchemaHelpers()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _date_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


class _Builder:
    """`builder.title("Bug")` and friends build typed values for a record's properties."""

    @staticmethod
    def title(text: Any) -> dict[str, Any]:
        return {"type": "title", "value": _text(text)}

    @staticmethod
    def rich_text(text: Any) -> dict[str, Any]:
        return {"type": "rich_text", "value": _text(text)}

    richText = rich_text

    @staticmethod
    def number(value: float | int | None) -> dict[str, Any]:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError(f"builder.number() takes a number, not {type(value).__name__}")
        return {"type": "number", "value": value}

    @staticmethod
    def checkbox(value: bool) -> dict[str, Any]:
        return {"type": "checkbox", "value": bool(value)}

    @staticmethod
    def date(start: Any, end: Any = None) -> dict[str, Any]:
        return {"type": "date", "value": {"start": _date_value(start), "end": _date_value(end)}}

    @staticmethod
    def url(value: str | None) -> dict[str, Any]:
        return {"type": "url", "value": value}

    @staticmethod
    def email(value: str | None) -> dict[str, Any]:
        return {"type": "email", "value": value}

    @staticmethod
    def phone_number(value: str | None) -> dict[str, Any]:
        return {"type": "phone_number", "value": value}

    phoneNumber = phone_number

    @staticmethod
    def select(name: str | None) -> dict[str, Any]:
        return {"type": "select", "value": name}

    @staticmethod
    def multi_select(names: list[str]) -> dict[str, Any]:
        return {"type": "multi_select", "value": [str(n) for n in names]}

    multiSelect = multi_select

    @staticmethod
    def status(name: str | None) -> dict[str, Any]:
        return {"type": "status", "value": name}

    @staticmethod
    def people(ids: list[str]) -> dict[str, Any]:
        return {"type": "people", "value": [str(i) for i in ids]}

    @staticmethod
    def relation(keys: list[str]) -> dict[str, Any]:
        return {"type": "relation", "value": [str(k) for k in keys]}

    @staticmethod
    def files(urls: list[str]) -> dict[str, Any]:
        return {"type": "files", "value": [str(u) for u in urls]}


builder = _Builder()
