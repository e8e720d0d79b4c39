"""`workers deploy`."""

from __future__ import annotations

import sys
from typing import Any

from ..deploy import EndpointChange, deploy
from . import add_command


def add_arguments(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "deploy",
        help="record the workers in WORKER_MODULES in the database",
        description=(
            "Import the modules in WORKER_MODULES (.env or the environment) and record their workers,\n"
            "OAuth capabilities, tools, syncs and webhooks in the database. What the code no longer\n"
            "declares is marked inactive, never deleted with its secrets and tokens. Works before any\n"
            "secret is set; prints what changed and which secrets are still missing. Run it again after\n"
            "every change to a worker's declarations."
        ),
        example_lines=[
            "python manage.py workers deploy",
            "python manage.py workers deploy && python manage.py workers env list",
            "python manage.py workers deploy --yes   # a script: accept endpoint changes of connected capabilities",
        ],
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="change endpoints of connected capabilities without asking (without a terminal, deploy refuses to)",
    )
    parser.set_defaults(handler=handle)


def _confirmer(command: Any, options: dict[str, Any]) -> Any:
    def confirm(changes: list[EndpointChange]) -> bool:
        for change in changes:
            command.stderr.write(command.style.WARNING(f"Warning: {change}"))
        if options["yes"]:
            return True
        stdin = command.stdin
        if not (hasattr(stdin, "isatty") and stdin.isatty() and sys.stderr.isatty()):
            # Refusing is the safe side: moving a connection to a wrong token endpoint breaks its
            # refreshes, and nobody is there to say the URL is what they meant.
            return False
        command.stderr.write("Change them? Their tokens stay, but refreshes go to the new endpoints. [y/N] ", ending="")
        command.stderr.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    return confirm


def handle(command: Any, options: dict[str, Any]) -> None:
    report = deploy(confirm=_confirmer(command, options))
    if report.changed:
        for line in report.changes:
            command.stdout.write(line)
        command.stdout.write(command.style.SUCCESS(f"Deployed: {len(report.changes)} change(s)."))
    else:
        command.stdout.write(command.style.SUCCESS("Deployed: no changes."))
    for note in report.notes:
        command.stdout.write(note)
    for worker, names in sorted(report.missing.items()):
        command.stdout.write(
            command.style.WARNING(
                f"Worker {worker} still lacks secret(s): {', '.join(names)} "
                f"(`python manage.py workers env set --worker {worker} NAME=...`)"
            )
        )
