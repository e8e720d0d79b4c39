"""`python manage.py workers ...`: mirrors the `ntn workers` CLI."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter
from django.db import DatabaseError

from connections.cli import HelpFormatter, WorkersParser, examples
from connections.exceptions import WorkersError
from connections.text import printable

EXAMPLES = (
    "python manage.py workers deploy",
    "python manage.py workers env set GITHUB_CLIENT_ID=abc123 GITHUB_CLIENT_SECRET=-",
    "python manage.py workers oauth start githubAuth",
    "python manage.py workers exec getGitHubRepos --input '{}'",
    "python manage.py workers sync run githubIssuesSync",
    "python manage.py workers runs --limit 5",
)


def _groups() -> list[Any]:
    from connections.cli import deploy, env, keys, mcp, oauth, serve, setup

    groups = [deploy, env, oauth, keys, setup, serve, mcp]
    try:  # the runner's commands (exec, sync, runs)
        from connections.cli import runner

        groups.append(runner)
    except ImportError:
        pass
    return groups


class _HelpFormatter(DjangoHelpFormatter, HelpFormatter):
    """Django's order (its common options last), our examples and defaults."""


class Command(BaseCommand):
    help = (
        "Deploy workers, manage their secrets and OAuth connections, run tools and syncs "
        "(mirrors `ntn workers`). Exit status 0 on success; any failure says why in one line."
    )
    # call_command(..., stdin=...) feeds `env set K=-` in tests and scripts.
    stealth_options = ("stdin",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stdin = sys.stdin

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("epilog", examples(EXAMPLES) + "\n\n`python manage.py workers COMMAND --help` tells more.")
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds this parser itself: give it the one-line errors of the subcommands' parsers.
        parser.__class__ = WorkersParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=WorkersParser)
        for group in _groups():
            group.add_arguments(subparsers)

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except KeyboardInterrupt as exc:
            # Ctrl-C is the person's choice, not a failure to explain with a traceback. A handler
            # may raise KeyboardInterrupt("...") to say what became of its work.
            self.stderr.write(printable(str(exc)) or "Interrupted.")
            sys.exit(130)  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

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
