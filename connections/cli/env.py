"""`workers env set | list | unset | pull`."""

from __future__ import annotations

import re
import sys
from typing import Any

from django.core.management.base import CommandError

from .. import secrets
from ..models import Worker
from . import add_worker_option, resolve_worker

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_arguments(subparsers: Any) -> None:
    env = subparsers.add_parser("env", help="manage a worker's secrets")
    sub = env.add_subparsers(dest="env_command", required=True)
    p = sub.add_parser("set", help="store secrets encrypted: K=V (K=- reads the value from stdin)")
    add_worker_option(p)
    p.add_argument("pairs", nargs="+", metavar="K=V")
    p.set_defaults(handler=handle_set)
    p = sub.add_parser("list", help="secret names and when they were set, never values")
    add_worker_option(p)
    p.set_defaults(handler=handle_list)
    p = sub.add_parser("unset", help="remove secrets")
    add_worker_option(p)
    p.add_argument("names", nargs="+", metavar="K")
    p.set_defaults(handler=handle_unset)
    p = sub.add_parser("pull", help="write secrets and fresh access tokens to a .env file (mode 0600)")
    add_worker_option(p)
    p.add_argument("--file", default=".env", help="file to merge into (default .env; other lines are kept)")
    p.set_defaults(handler=handle_pull)


def parse_pairs(pairs: list[str], stdin: Any = None) -> dict[str, str]:
    values: dict[str, str] = {}
    from_stdin = [pair for pair in pairs if pair.endswith("=-")]
    if len(from_stdin) > 1:
        raise CommandError("Only one K=- may read its value from stdin.")
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"{name!r} is not K=V.")
        if not _NAME.match(name):
            raise CommandError(
                f"{name!r} is not a valid secret name (letters, digits and _, not starting with a digit)."
            )
        if value == "-":
            stream = stdin or sys.stdin
            value = stream.read()
            if value.endswith("\n"):
                value = value[:-1]
                if value.endswith("\r"):
                    value = value[:-1]
        if value == "":
            raise CommandError(f"{name} has an empty value; use `workers env unset {name}` to remove it.")
        values[name] = value
    return values


def worker_for_names(slug: str | None, names: list[str]) -> Worker:
    """--worker, the only worker, or the one worker that refers to (or stores) these names."""
    if slug or Worker.objects.filter(is_active=True).count() <= 1:
        return resolve_worker(slug)
    owners = {owner for name in names for owner in secrets.workers_wanting(name)}
    if len(owners) == 1:
        return Worker.objects.get(slug=owners.pop())
    if not owners:
        raise CommandError(f"No worker refers to {', '.join(names)}: pass --worker.")
    raise CommandError(
        f"{', '.join(names)} could belong to several workers ({', '.join(sorted(owners))}): pass --worker."
    )


def handle_set(command: Any, options: dict[str, Any]) -> None:
    values = parse_pairs(options["pairs"], command.stdin)
    worker = worker_for_names(options.get("worker"), list(values))
    for name, created in secrets.set_secrets(worker.slug, values):
        command.stdout.write(f"{'Added' if created else 'Updated'} {name} for worker {worker.slug}.")


def handle_list(command: Any, options: dict[str, Any]) -> None:
    if options.get("worker") or Worker.objects.filter(is_active=True).count() <= 1:
        workers = [resolve_worker(options.get("worker"))]
    else:
        workers = list(Worker.objects.filter(is_active=True))
    for worker in workers:
        if len(workers) > 1:
            command.stdout.write(command.style.MIGRATE_HEADING(f"{worker.slug}:"))
        rows = secrets.list_secrets(worker.slug)
        if not rows:
            command.stdout.write(f"Worker {worker.slug} has no secrets.")
        for name, updated in rows:
            command.stdout.write(f"{name}\tset {updated:%Y-%m-%d %H:%M:%S %Z}")
        for name in secrets.missing_secrets(worker):
            command.stdout.write(command.style.WARNING(f"{name}\tnot set (referenced by the worker)"))


def handle_unset(command: Any, options: dict[str, Any]) -> None:
    worker = worker_for_names(options.get("worker"), options["names"])
    unknown = secrets.unset_secrets(worker.slug, options["names"])
    for name in options["names"]:
        if name not in unknown:
            command.stdout.write(f"Removed {name} from worker {worker.slug}.")
    if unknown:
        raise CommandError(f"Worker {worker.slug} has no secret(s) {', '.join(unknown)}.")


def handle_pull(command: Any, options: dict[str, Any]) -> None:
    from ..envpull import pull_env

    worker = resolve_worker(options.get("worker"))
    path, names, problems = pull_env(worker.slug, options["file"])
    command.stdout.write(f"Wrote {len(names)} variable(s) to {path} (mode 0600): {', '.join(names) or 'none'}.")
    for problem in problems:
        command.stderr.write(command.style.WARNING(problem))
