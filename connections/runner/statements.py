"""The statements every run and every webhook makes, written as SQL and prepared on PostgreSQL.

On the worker: the claim (its conditional UPDATE, returning the run with its worker, its tool and
the ciphertexts of its worker's secrets and tokens in the same statement on PostgreSQL; read next
elsewhere) and the outcome. For a webhook: the read of the webhook with its worker
and its signing secret, and the check for an earlier copy of a signed request. Through the ORM each was compiled again
every time: on a 2-core machine that was most of a trivial run's time on the worker (the claim
3.6 ms, the secrets 2.2 ms, against 0.6 ms for everything else a run does). Here each is built
once per database from the models' metadata (only table and column names are interpolated; values
are parameters) and prepared once per connection (connections/prepared.py), so PostgreSQL does not
plan it again either. Rows become model instances through the fields' own converters, as the
ORM's would.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.models import Model

from .. import prepared, secrets
from ..models import Run, Secret, Tool, Webhook, WebhookEvent, Worker

Converter = Callable[[Any, Any, Any], Any]
Parts = tuple[tuple[type[Model], str], ...]

# The models a row holds, in the order of its columns, with their aliases in the statement.
_CLAIMED: Parts = ((Run, "claimed"), (Worker, "w"), (Tool, "t"))
_WEBHOOK: Parts = ((Webhook, "h"), (Worker, "w"))


@functools.cache
def _converters(using: str, model: type[Model], alias: str) -> tuple[tuple[int, Any, tuple[Converter, ...]], ...]:
    """(column index, column, converters) for each of the model's columns that the ORM would convert."""
    conn = connections[using]
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(alias)
        chain = tuple(conn.ops.get_db_converters(column) + field.get_db_converters(conn))
        if chain:
            found.append((index, column, chain))
    return tuple(found)


@functools.cache
def _attnames(model: type[Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _columns(using: str, parts: Parts) -> str:
    """The SELECT list of every concrete column of each (model, alias), in order."""
    q = connections[using].ops.quote_name
    return ", ".join(f"{alias}.{q(field.column)}" for model, alias in parts for field in model._meta.concrete_fields)


def _instances(using: str, parts: Parts, row: Sequence[Any]) -> list[Model]:
    """One instance per (model, alias) from a row of `_columns(using, parts)`, converted as the ORM would."""
    conn = connections[using]
    found = []
    start = 0
    for model, alias in parts:
        values = list(row[start : start + len(model._meta.concrete_fields)])
        start += len(values)
        for index, column, chain in _converters(using, model, alias):
            for convert in chain:
                values[index] = convert(values[index], column, conn)
        found.append(model.from_db(using, _attnames(model), values))
    return found


@functools.cache
def _claim_sql(using: str) -> tuple[str, str | None]:
    """(statement, then-read): on PostgreSQL the UPDATE and the read in one statement, the read None."""
    conn = connections[using]
    q = conn.ops.quote_name
    meta = Run._meta

    def col(name: str) -> str:
        return q(meta.get_field(name).column)

    status = col("status")
    update = (
        f"UPDATE {q(meta.db_table)} SET {status} = %(running)s, {col('unsent')} = %(no)s, "  # noqa: S608
        f"{col('attempts')} = {col('attempts')} + 1, {col('owner')} = %(owner)s, {col('heartbeat_at')} = %(now)s, "
        f"{col('started_at')} = COALESCE({col('started_at')}, %(now)s) "
        f"WHERE {q(meta.pk.column)} = %(id)s AND ({status} = %(queued)s "
        f"OR ({status} = %(retrying)s AND ({col('due_at')} IS NULL OR {col('due_at')} <= %(due_by)s)))"
    )
    # The worker's secrets and tokens ride along: what its outcome is blanked of (see execute.perform).
    ciphertexts = secrets.ciphertexts_column(using, f"claimed.{col('worker')}")
    columns = f"{_columns(using, _CLAIMED)}, {ciphertexts}"
    joins = (
        f"INNER JOIN {q(Worker._meta.db_table)} w ON w.{q(Worker._meta.pk.column)} = claimed.{col('worker')} "
        f"LEFT OUTER JOIN {q(Tool._meta.db_table)} t ON t.{q(Tool._meta.pk.column)} = claimed.{col('tool')}"
    )
    if conn.vendor == "postgresql":
        # Inside the WITH the table is the table; after it, `claimed` is the updated row alone.
        return f"WITH claimed AS ({update} RETURNING *) SELECT {columns} FROM claimed {joins}", None  # noqa: S608
    read = (
        f"SELECT {columns} FROM {q(meta.db_table)} claimed {joins} "  # noqa: S608
        f"WHERE claimed.{q(meta.pk.column)} = %(id)s AND claimed.{col('owner')} = %(owner)s"
    )
    return update, read


def claim_row(run_id: int, owner: str, now: datetime, due_by: datetime) -> Run | None:
    """Mark a queued run (or a retry due by `due_by`) running for `owner`; the run with its worker, its
    tool and its worker's secret and token ciphertexts, or None when no such run was claimable."""
    using = router.db_for_write(Run)
    conn = connections[using]
    statement, read = _claim_sql(using)
    stamp = conn.ops.adapt_datetimefield_value
    params = {
        "running": Run.Status.RUNNING.value,
        "queued": Run.Status.QUEUED.value,
        "retrying": Run.Status.RETRYING.value,
        "no": False,
        "owner": owner,
        "now": stamp(now),
        "due_by": stamp(due_by),
        "id": run_id,
    }
    if read is None:
        row = prepared.fetchone(statement, params, conn)
    else:
        row = prepared.fetchone(read, params, conn) if prepared.rowcount(statement, params, conn) else None
    if row is None:
        return None
    run, worker, tool = _instances(using, _CLAIMED, row[:-1])
    run.claimed_ciphertexts = secrets.ciphertext_pairs(row[-1])
    run.worker = worker
    # A run queued before tools were linked to runs has none: the LEFT JOIN's columns are NULL.
    run.tool = tool if run.tool_id is not None else None
    return run


@functools.cache
def _finish_sql(using: str, names: tuple[str, ...]) -> str:
    q = connections[using].ops.quote_name
    meta = Run._meta
    assignments = ", ".join(f"{q(meta.get_field(name).column)} = %(set_{name})s" for name in names)
    return (
        f"UPDATE {q(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {q(meta.pk.column)} = %(id)s AND {q(meta.get_field('status').column)} = %(running)s "
        f"AND {q(meta.get_field('owner').column)} = %(owner)s"
    )


def finish_row(run_id: int, owner: str, values: dict[str, Any]) -> bool:
    """Store `values` (field name -> value) on the run if it is still running for `owner`; whether it was."""
    using = router.db_for_write(Run)
    conn = connections[using]
    names = tuple(values)
    params = {f"set_{name}": Run._meta.get_field(name).get_db_prep_save(value, conn) for name, value in values.items()}
    params.update(id=run_id, running=Run.Status.RUNNING.value, owner=owner)
    return prepared.rowcount(_finish_sql(using, names), params, conn) > 0


@functools.cache
def _webhook_sql(using: str) -> str:
    conn = connections[using]
    q = conn.ops.quote_name
    columns = _columns(using, _WEBHOOK)
    owner = q(Webhook._meta.get_field("worker").column)
    secret = Secret._meta
    # The signing secret named by the webhook's own row (its `signature`), read in the same statement.
    signature = f"h.{q(Webhook._meta.get_field('signature').column)}"
    name = f"{signature} ->> 'secret'" if conn.vendor == "postgresql" else f"json_extract({signature}, '$.secret')"
    return (
        f"SELECT {columns}, s.{q(secret.get_field('value').column)} FROM {q(Webhook._meta.db_table)} h "  # noqa: S608
        f"INNER JOIN {q(Worker._meta.db_table)} w ON w.{q(Worker._meta.pk.column)} = h.{owner} "
        f"LEFT OUTER JOIN {q(secret.db_table)} s ON s.{q(secret.get_field('worker').column)} = w.{q(Worker._meta.pk.column)} "
        f"AND s.{q(secret.get_field('name').column)} = {name} "
        f"WHERE w.{q('slug')} = %(worker)s AND h.{q('key')} = %(key)s"
    )


def webhook_row(worker_slug: str, key: str) -> tuple[Webhook, str | None] | None:
    """The deployed webhook with its worker, and the ciphertext of the signing secret its signature
    names (None when it names none, or it is not set); read for every request to its URL. None when
    there is no such webhook."""
    using = router.db_for_read(Webhook)
    row = prepared.fetchone(_webhook_sql(using), {"worker": worker_slug, "key": key}, connections[using])
    if row is None:
        return None
    hook, worker = _instances(using, _WEBHOOK, row[:-1])
    hook.worker = worker
    return hook, row[-1]


@functools.cache
def _replay_sql(using: str) -> str:
    q = connections[using].ops.quote_name
    meta = WebhookEvent._meta
    return (
        f"SELECT {q(meta.pk.column)} FROM {q(meta.db_table)} "  # noqa: S608
        f"WHERE {q(meta.get_field('replay_digest').column)} = %(digest)s"
    )


def event_with_digest(digest: str) -> int | None:
    """The id of the event stored for this signed request, if one was (read when its insert was refused as a copy)."""
    using = router.db_for_read(WebhookEvent)
    row = prepared.fetchone(_replay_sql(using), {"digest": digest}, connections[using])
    return None if row is None else row[0]
