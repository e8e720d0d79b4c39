"""`python manage.py workers ...`: mirrors the `ntn workers` CLI."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from connections.exceptions import WorkersError
from connections.text import printable


def _groups() -> list[Any]:
    from connections.cli import deploy, env, keys, mcp, oauth, serve, setup

    groups = [deploy, env, oauth, keys, setup, serve, mcp]
    try:  # the runner's commands (exec, sync, runs)
        from connections.cli import runner

        groups.append(runner)
    except ImportError:
        pass
    return groups


class Command(BaseCommand):
    help = "Deploy workers, manage their secrets and OAuth connections, run tools and syncs."
    # call_command(..., stdin=...) feeds `env set K=-` in tests and scripts.
    stealth_options = ("stdin",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stdin = sys.stdin

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        for group in _groups():
            group.add_arguments(subparsers)

    def execute(self, *args: Any, **options: Any) -> Any:
        if options.get("stdin") is not None:
            self.stdin = options.pop("stdin")
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            options["handler"](self, options)
        except WorkersError as exc:
            # Messages may quote a provider or worker code: nothing in them may drive the terminal.
            raise CommandError(printable(str(exc))) from None
        except DatabaseError as exc:
            # First line only: PostgreSQL appends the statement, which is no reason a user can act on.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CommandError(
                f"Database error: {reason} (is the database up and migrated? `python manage.py migrate`)"
            ) from None
