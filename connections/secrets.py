"""Workers' secrets: set, unset, list and read, always encrypted at rest."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Model

from . import prepared
from .exceptions import MissingSecret, WorkerNotFound
from .models import Connection, OAuthCapability, Secret, Webhook, Worker


def _worker(slug: str) -> Worker:
    try:
        return Worker.objects.get(slug=slug)
    except Worker.DoesNotExist:
        raise WorkerNotFound(f"No deployed worker {slug!r}: run `python manage.py workers deploy` first") from None


def _quote(using: str) -> Any:
    return connections[using].ops.quote_name


def _of_worker(using: str, model: type[Model], alias: str) -> str:
    """`JOIN worker w ... WHERE w.slug = %(worker)s` for a table whose rows have a `worker` key."""
    q = _quote(using)
    owner = q(model._meta.get_field("worker").column)
    slug = q(Worker._meta.get_field("slug").column)
    return f"INNER JOIN {q(Worker._meta.db_table)} w ON w.{q(Worker._meta.pk.column)} = {alias}.{owner} WHERE w.{slug} = %(worker)s"


@functools.cache
def _secret_sql(using: str) -> str:
    q = _quote(using)
    meta = Secret._meta
    return (
        f"SELECT s.{q(meta.get_field('value').column)} FROM {q(meta.db_table)} s "  # noqa: S608
        f"{_of_worker(using, Secret, 's')} AND s.{q(meta.get_field('name').column)} = %(name)s"
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
    return decrypted(row[0])


def decrypted(ciphertext: str) -> str:
    """A secret's value from its stored ciphertext (read here, or joined into another statement's row)."""
    return Secret._meta.get_field("value").from_db_value(ciphertext, None, connections[router.db_for_read(Secret)])


def _ciphertexts_union(using: str, secrets_where: str, capabilities_where: str) -> str:
    """(ciphertext, capability name or "") of secrets, access and refresh tokens: `secrets_where` follows
    `secret s`, `capabilities_where` follows `connection c JOIN capability k`."""
    q = _quote(using)
    conn_meta, capability = Connection._meta, OAuthCapability._meta
    to_capability = q(conn_meta.get_field("capability").column)
    name = f"k.{q(capability.get_field('name').column)}"
    tokens = (
        f"FROM {q(conn_meta.db_table)} c INNER JOIN {q(capability.db_table)} k "
        f"ON k.{q(capability.pk.column)} = c.{to_capability} {capabilities_where}"
    )
    return (
        f"SELECT s.{q(Secret._meta.get_field('value').column)} AS v, '' AS n "  # noqa: S608
        f"FROM {q(Secret._meta.db_table)} s {secrets_where} "
        f"UNION ALL SELECT c.{q(conn_meta.get_field('access_token').column)}, {name} {tokens} "
        f"UNION ALL SELECT c.{q(conn_meta.get_field('refresh_token').column)}, {name} {tokens}"
    )


@functools.cache
def _ciphertexts_sql(using: str) -> str:
    return _ciphertexts_union(using, _of_worker(using, Secret, "s"), _of_worker(using, OAuthCapability, "k"))


def ciphertexts(worker: str) -> list[tuple[str, str]]:
    """(ciphertext, capability name or "") of the worker's secrets, access tokens and refresh tokens,
    in one statement prepared on PostgreSQL: what a run's outcome is blanked of."""
    using = router.db_for_read(Secret)
    return prepared.fetchall(_ciphertexts_sql(using), {"worker": worker}, connections[using])


@functools.cache
def ciphertexts_column(using: str, worker_id: str) -> str:
    """A scalar subquery for another statement's SELECT list: `ciphertexts()` of the worker whose id is
    the SQL expression `worker_id`, as JSON text (an array of [ciphertext, name] pairs; NULL or `[]`
    for none). Read it with `ciphertext_pairs`."""
    q = _quote(using)
    union = _ciphertexts_union(
        using,
        f"WHERE s.{q(Secret._meta.get_field('worker').column)} = {worker_id}",
        f"WHERE k.{q(OAuthCapability._meta.get_field('worker').column)} = {worker_id}",
    )
    if connections[using].vendor == "postgresql":
        return f"(SELECT json_agg(json_build_array(x.v, x.n))::text FROM ({union}) x)"  # noqa: S608
    return f"(SELECT json_group_array(json_array(x.v, x.n)) FROM ({union}) x)"  # noqa: S608


def ciphertext_pairs(text: str | None) -> list[tuple[str, str]]:
    """What a `ciphertexts_column` holds, as `ciphertexts()` gives it."""
    return [(value, name) for value, name in json.loads(text)] if text else []


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
