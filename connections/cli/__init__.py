"""The `workers` command's subcommands, one module per group; each is a thin caller of the app's functions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
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
    parser.add_argument("--worker", help="worker slug; may be left out when it is unambiguous")
