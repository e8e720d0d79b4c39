"""`workers deploy`."""

from __future__ import annotations

from typing import Any

from ..deploy import deploy
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
        ],
    )
    parser.set_defaults(handler=handle)


def handle(command: Any, options: dict[str, Any]) -> None:
    report = deploy()
    if report.changed:
        for line in report.changes:
            command.stdout.write(line)
        command.stdout.write(command.style.SUCCESS(f"Deployed: {len(report.changes)} change(s)."))
    else:
        command.stdout.write(command.style.SUCCESS("Deployed: no changes."))
    for worker, names in sorted(report.missing.items()):
        command.stdout.write(
            command.style.WARNING(
                f"Worker {worker} still lacks secret(s): {', '.join(names)} "
                f"(`python manage.py workers env set --worker {worker} NAME=...`)"
            )
        )
