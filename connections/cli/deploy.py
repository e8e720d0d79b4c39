"""`workers deploy`."""

from __future__ import annotations

from typing import Any

from ..deploy import deploy


def add_arguments(subparsers: Any) -> None:
    parser = subparsers.add_parser("deploy", help="record the workers in WORKER_MODULES in the database")
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
