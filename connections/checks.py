"""System checks: `manage.py check --database default` fails when the keys cannot read stored secrets."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections


@register(Tags.database)
def check_encryption_keys(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Error]:
    from .crypto import describe, startup_problems

    if not databases or "default" not in databases:
        return []
    try:
        connections["default"].ensure_connection()
        problems = startup_problems()
    except DatabaseError:
        return []
    if not problems:
        return []
    return [
        Error(
            describe(problems),
            hint="Restore the previous key, then run `manage.py workers keys rotate`.",
            id="connections.E001",
        )
    ]
