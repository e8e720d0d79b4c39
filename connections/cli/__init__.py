"""The `workers` command's subcommands, one module per group; each is a thin caller of the app's functions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from django.core.management.base import CommandError, CommandParser
from django.db.models import Model

from ..models import Worker


def resolve_worker(
    slug: str | None, *, key: str | None = None, model: type[Model] | None = None, kind: str = ""
) -> Worker:
    """--worker, or the only active worker, or the one worker declaring `key` among `model`'s rows."""
    active = Worker.objects.filter(is_active=True)
    if slug:
        worker = Worker.objects.filter(slug=slug).first()
        if worker is None:
            raise CommandError(f"No deployed worker {slug!r}: run `python manage.py workers deploy` first.")
        return worker
    if key and model is not None:
        owners = list(model.objects.filter(key=key, is_active=True).values_list("worker__slug", flat=True))
        if len(owners) == 1:
            return Worker.objects.get(slug=owners[0])
        if not owners:
            raise CommandError(
                f"No active {kind or model._meta.verbose_name} {key!r}: check the name or run "
                "`python manage.py workers deploy`."
            )
        raise CommandError(f"{key!r} exists in several workers ({', '.join(sorted(owners))}): pass --worker.")
    workers = list(active)
    if len(workers) == 1:
        return workers[0]
    if not workers:
        raise CommandError("No deployed worker: run `python manage.py workers deploy` first.")
    raise CommandError(f"Several workers are deployed ({', '.join(w.slug for w in workers)}): pass --worker.")


def add_worker_option(parser: Any) -> None:
    parser.add_argument(
        "--worker",
        metavar="NAME",
        help="the worker's slug; may be left out when the site has one worker or the key is unique",
    )


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples keep their lines; an option's default follows its help.

    Unlike argparse's ArgumentDefaultsHelpFormatter, says nothing for flags and for options
    whose absence means "none" (`--worker`), where "(default: None)" would teach nothing.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" not in text
            and action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
        ):
            text += " (default: %(default)s)"
        return text


class WorkersParser(CommandParser):
    """Bad arguments in one line, as every other failure of the command (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        if not self.called_from_command_line:
            raise CommandError(f"Error: {message}")
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def examples(lines: Sequence[str]) -> str:
    """An epilog of example command lines, one per line."""
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(
    subparsers: Any, name: str, *, help: str, description: str, example_lines: Sequence[str]
) -> CommandParser:
    """A subcommand whose --help teaches it: a one-line summary in its group's list, a description, examples."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=examples(example_lines),
        formatter_class=HelpFormatter,
    )


def positive_seconds(text: str) -> float:
    """argparse type of --timeout: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value
