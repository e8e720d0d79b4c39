"""`workers env set | list | unset | pull`."""

from __future__ import annotations

import re
import sys
from typing import Any

from django.core.management.base import CommandError

from .. import registry, secrets
from ..models import Worker
from . import add_command, add_worker_option, resolve_worker

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_arguments(subparsers: Any) -> None:
    env = add_command(
        subparsers,
        "env",
        help="manage a worker's secrets",
        description=(
            "A worker's secrets (client ids and secrets, webhook secrets, API keys): stored encrypted,\n"
            'listed by name, never printed. Worker code reads them with worker.env("NAME").'
        ),
        example_lines=[
            "python manage.py workers env set GITHUB_CLIENT_ID=abc123",
            "python manage.py workers env list",
            "python manage.py workers env unset GITHUB_CLIENT_ID",
            "python manage.py workers env pull --worker sandbox",
        ],
    )
    sub = env.add_subparsers(dest="env_command", required=True, metavar="SUBCOMMAND")
    p = add_command(
        sub,
        "set",
        help="store secrets encrypted: K=V (K=- reads the value from stdin)",
        description=(
            "Store secrets encrypted, adding or replacing them. K=- reads the value from stdin, which\n"
            "keeps it out of the shell's history and the process list. --worker may be left out when\n"
            "the site has one worker or one worker refers to the names. A name the worker does not\n"
            "refer to is stored with a warning that lists the names it does refer to."
        ),
        example_lines=[
            "python manage.py workers env set GITHUB_CLIENT_ID=abc123",
            "python manage.py workers env set --worker github GITHUB_CLIENT_SECRET=- < client-secret.txt",
            'echo "$GITHUB_WEBHOOK_SECRET" | python manage.py workers env set GITHUB_WEBHOOK_SECRET=-',
        ],
    )
    add_worker_option(p)
    p.add_argument("pairs", nargs="+", metavar="K=V", help="a secret's name and value; K=- reads the value from stdin")
    p.set_defaults(handler=handle_set)
    p = add_command(
        sub,
        "list",
        help="secret names and when they were set, never values",
        description=(
            "The names of the stored secrets and when each was last set, never their values; then the\n"
            "names the worker refers to that are not set yet. Without --worker, every worker's."
        ),
        example_lines=["python manage.py workers env list", "python manage.py workers env list --worker github"],
    )
    add_worker_option(p)
    p.set_defaults(handler=handle_list)
    p = add_command(
        sub,
        "unset",
        help="remove secrets",
        description="Remove stored secrets. Fails, naming them, when some of the names are not stored.",
        example_lines=[
            "python manage.py workers env unset GITHUB_CLIENT_ID",
            "python manage.py workers env unset --worker github GITHUB_CLIENT_ID GITHUB_CLIENT_SECRET",
        ],
    )
    add_worker_option(p)
    p.add_argument("names", nargs="+", metavar="K", help="the name of a secret to remove")
    p.set_defaults(handler=handle_unset)
    p = add_command(
        sub,
        "pull",
        help="write secrets and fresh access tokens to a .env file (mode 0600)",
        description=(
            "Merge the worker's secrets, and a freshly refreshed access token per connected capability\n"
            "(OAUTH_<HEX OF THE NAME>_ACCESS_TOKEN), into a .env file of mode 0600; other lines are kept.\n"
            "`workers exec --local` and your own scripts can then run with them."
        ),
        example_lines=[
            "python manage.py workers env pull --worker sandbox",
            "python manage.py workers env pull --worker github --file .env.github",
        ],
    )
    add_worker_option(p)
    p.add_argument("--file", default=".env", help="the file to merge into; its other lines are kept")
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
    owners = {owner for name in names for owner in registry.workers_wanting(name)}
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
    known = registry.referenced_names(worker)
    strangers = [name for name in values if name not in known]
    if strangers:
        # Stored all the same: the code may read it in a way no one can see (a typo is likelier).
        refers_to = f"it refers to {', '.join(sorted(known))}" if known else "it refers to no secret"
        command.stderr.write(
            command.style.WARNING(
                f"Warning: worker {worker.slug} does not refer to {', '.join(strangers)} ({refers_to}); "
                f"stored anyway (`python manage.py workers env unset --worker {worker.slug} "
                f"{' '.join(strangers)}` removes it)."
            )
        )


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
