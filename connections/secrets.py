"""Workers' secrets: set, unset, list and read, always encrypted at rest."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.db import connections, router, transaction

from . import prepared
from .exceptions import MissingSecret, WorkerNotFound
from .models import OAuthCapability, Secret, Webhook, Worker


def _worker(slug: str) -> Worker:
    try:
        return Worker.objects.get(slug=slug)
    except Worker.DoesNotExist:
        raise WorkerNotFound(f"No deployed worker {slug!r}: run `python manage.py workers deploy` first") from None


@functools.cache
def _secret_sql(using: str) -> str:
    q = connections[using].ops.quote_name
    meta = Secret._meta
    owner = q(meta.get_field("worker").column)
    return (
        f"SELECT s.{q(meta.get_field('value').column)} FROM {q(meta.db_table)} s "  # noqa: S608
        f"INNER JOIN {q(Worker._meta.db_table)} w ON w.{q(Worker._meta.pk.column)} = s.{owner} "
        f"WHERE w.{q('slug')} = %(worker)s AND s.{q('name')} = %(name)s"
    )


def get_secret(worker: str, name: str) -> str:
    """The value of a worker's secret; MissingSecret when it has not been set.

    Read for every signed webhook and wherever code resolves `worker.env(...)`: one statement,
    prepared on PostgreSQL (connections/prepared.py), decrypted by the field as the ORM would.
    """
    using = router.db_for_read(Secret)
    conn = connections[using]
    row = prepared.fetchone(_secret_sql(using), {"worker": worker, "name": name}, conn)
    if row is None:
        raise MissingSecret(worker, name)
    return Secret._meta.get_field("value").from_db_value(row[0], None, conn)


def set_secrets(worker: str, values: dict[str, str]) -> list[tuple[str, bool]]:
    """Store each value encrypted; returns (name, created) pairs."""
    target = _worker(worker)
    results = []
    with transaction.atomic():
        for name, value in values.items():
            secret, created = Secret.objects.get_or_create(worker=target, name=name, defaults={"value": value})
            if not created:
                secret.value = value
                secret.save(update_fields=["value", "updated_at"])
            results.append((name, created))
    return results


def unset_secrets(worker: str, names: list[str]) -> list[str]:
    """Remove the named secrets; returns the names that did not exist."""
    target = _worker(worker)
    existing = set(Secret.objects.filter(worker=target, name__in=names).values_list("name", flat=True))
    Secret.objects.filter(worker=target, name__in=existing).delete()
    return [name for name in names if name not in existing]


def list_secrets(worker: str) -> list[tuple[str, object]]:
    """(name, last set) pairs; values are never read."""
    target = _worker(worker)
    return list(Secret.objects.filter(worker=target).order_by("name").values_list("name", "updated_at"))


def missing_secrets(worker: Worker) -> list[str]:
    """Secret names the worker's active capabilities and webhooks refer to but which are not set."""
    return missing_among(
        worker.capabilities.filter(is_active=True),
        worker.webhooks.filter(is_active=True, signature__isnull=False),
        worker.secrets.values_list("name", flat=True),
    )


def missing_among(
    capabilities: Iterable[OAuthCapability], webhooks: Iterable[Webhook], names: Iterable[str]
) -> list[str]:
    """missing_secrets() over rows already loaded (a page of workers, prefetched together); inactive ones skipped."""
    wanted: set[str] = set()
    for capability in capabilities:
        if capability.is_active:
            wanted.update(capability.secret_names())
    for webhook in webhooks:
        if webhook.is_active and webhook.signature and webhook.signature.get("secret"):
            wanted.add(webhook.signature["secret"])
    return sorted(wanted - set(names))
