"""Checks that the configured keys can read what is stored, and re-encrypts under the first key."""

from __future__ import annotations

import random
from collections import defaultdict

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import DatabaseError, connection, transaction
from encrypted_model_fields import fields as emf

from .exceptions import UndecryptableValue

# What the key canary decrypts to; any other plaintext means the row was not written by us.
CANARY_TEXT = "workers key canary"
CANARY_LABEL = "connections.KeyCanary.value"
# Start-up reads at most this many rows per table: the newest and the oldest (the oldest are the
# likeliest to be under a key that was dropped before `keys rotate`), plus rows at random points.
SAMPLE_EACH_END = 25
SAMPLE_RANDOM = 10


def encrypted_columns() -> list[tuple[type, str, str]]:
    """(model, field name, column) for every encrypted field of every installed model."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, emf.EncryptedMixin):
                found.append((model, field.name, field.column))
    return found


def _readable(value: object) -> bool | None:
    """Whether the configured keys decrypt a raw column value; None for a value with nothing to decrypt."""
    if isinstance(value, memoryview):
        value = bytes(value).decode()
    if value is None or value == "":
        return None
    try:
        emf.CRYPTER.decrypt(str(value).encode())
    except InvalidToken:
        return False
    return True


def undecryptable_counts() -> dict[str, tuple[int, int]]:
    """{"app.Model.field": (unreadable, stored)} for columns where some value cannot be decrypted.

    Reads every raw value of every encrypted column (its time grows with what is stored), so it
    works whatever the field's own decryption does; start-up uses `startup_problems` instead.
    """
    problems: dict[str, tuple[int, int]] = {}
    existing = set(connection.introspection.table_names())
    for model, name, column in encrypted_columns():
        table = model._meta.db_table
        if table not in existing:
            continue
        qn = connection.ops.quote_name
        bad = total = 0
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {qn(column)} FROM {qn(table)} WHERE {qn(column)} IS NOT NULL")  # noqa: S608
            while rows := cursor.fetchmany(1000):
                for (value,) in rows:
                    readable = _readable(value)
                    if readable is not None:
                        total += 1
                        bad += not readable
        if bad:
            problems[f"{model._meta.label}.{name}"] = (bad, total)
    return problems


def _sample_rows(table: str, pk: str, columns: list[str], rng: random.Random) -> list[tuple]:
    """A bounded set of rows of `table`: the newest, the oldest, and a few at random primary keys.

    At most 2 + SAMPLE_RANDOM indexed queries and 2 * SAMPLE_EACH_END + SAMPLE_RANDOM rows,
    whatever the table holds.
    """
    qn = connection.ops.quote_name
    select = f"SELECT {qn(pk)}, {', '.join(qn(c) for c in columns)} FROM {qn(table)}"  # noqa: S608
    rows: dict[object, tuple] = {}
    with connection.cursor() as cursor:
        for order in ("DESC", "ASC"):
            cursor.execute(f"{select} ORDER BY {qn(pk)} {order} LIMIT %s", [SAMPLE_EACH_END])
            fetched = cursor.fetchall()
            rows.update((row[0], row[1:]) for row in fetched)
            if len(fetched) < SAMPLE_EACH_END:
                return list(rows.values())  # the whole table has been read
        keys = [key for key in rows if isinstance(key, int)]
        if len(keys) == len(rows):
            low, high = min(keys), max(keys)
            for _ in range(SAMPLE_RANDOM):
                cursor.execute(f"{select} WHERE {qn(pk)} >= %s ORDER BY {qn(pk)} LIMIT 1", [rng.randint(low, high)])
                row = cursor.fetchone()
                if row is not None:
                    rows[row[0]] = row[1:]
    return list(rows.values())


def sampled_counts(rng: random.Random | None = None, existing: set[str] | None = None) -> dict[str, tuple[int, int]]:
    """Like `undecryptable_counts`, over a bounded sample of each table instead of every row."""
    from .models import KeyCanary

    rng = rng or random.Random()  # noqa: S311  (which rows to look at, not a secret)
    by_model: dict[type, list[tuple[str, str]]] = defaultdict(list)
    for model, name, column in encrypted_columns():
        if model is not KeyCanary:
            by_model[model].append((name, column))
    if existing is None:
        existing = set(connection.introspection.table_names())
    problems: dict[str, tuple[int, int]] = {}
    for model, fields in by_model.items():
        if model._meta.db_table not in existing:
            continue
        rows = _sample_rows(model._meta.db_table, model._meta.pk.column, [c for _n, c in fields], rng)
        for index, (name, _column) in enumerate(fields):
            verdicts = [v for v in (_readable(row[index]) for row in rows) if v is not None]
            bad = verdicts.count(False)
            if bad:
                problems[f"{model._meta.label}.{name}"] = (bad, len(verdicts))
    return problems


def _canary_state(existing: set[str]) -> str:
    """The key canary: "ok", "unreadable" (a key that did not write it), or "missing" (also before migrating)."""
    from .models import KeyCanary

    table = KeyCanary._meta.db_table
    if table not in existing:
        return "missing"
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('value')} FROM {qn(table)} ORDER BY {qn('id')} LIMIT 1")  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        return "missing"
    value = row[0]
    if isinstance(value, memoryview):
        value = bytes(value).decode()
    try:
        return "ok" if emf.decrypt_str(value) == CANARY_TEXT else "unreadable"
    except InvalidToken:
        return "unreadable"


def _write_canary() -> None:
    from .models import KeyCanary

    try:
        # A fixed primary key: processes starting together write one row between them.
        KeyCanary.objects.get_or_create(pk=1, defaults={"value": CANARY_TEXT})
    except DatabaseError:
        pass  # a read-only database user: the sample alone still guards this start


def startup_problems() -> dict[str, tuple[int, int]]:
    """What start-up checks, in a time that does not grow with what is stored.

    The key canary (one value written under the first key the first time a check passed) refuses
    a wrong key even before any secret is stored; the sample catches a database whose values were
    written under a key that is not listed although the canary reads (a restored backup, say).
    Writes the canary when it is missing and the sample is readable.
    """
    existing = set(connection.introspection.table_names())
    problems = sampled_counts(existing=existing)
    canary = _canary_state(existing)
    if canary == "unreadable":
        problems[CANARY_LABEL] = (1, 1)
    elif canary == "missing" and not problems:
        _write_canary()
    return problems


def describe(problems: dict[str, tuple[int, int]]) -> str:
    parts = ", ".join(
        f"{bad} of {total} in {label}" + (" (the key canary)" if label == CANARY_LABEL else "")
        for label, (bad, total) in sorted(problems.items())
    )
    return (
        f"FIELD_ENCRYPTION_KEY cannot read stored secrets ({parts}). Set FIELD_ENCRYPTION_KEY to the key "
        "they were written with (several keys may be given comma-separated: the first encrypts, all decrypt)."
    )


def assert_keys_can_read() -> None:
    """Raise UndecryptableValue when the key canary or a sampled value cannot be read; quiet when the
    schema is absent. Bounded: see `startup_problems`."""
    try:
        problems = startup_problems()
    except DatabaseError:
        return  # not migrated yet, or the database is down: the health check reports that
    if problems:
        raise UndecryptableValue(describe(problems))


def assert_every_value_readable() -> None:
    """Raise UndecryptableValue unless every stored value reads: `workers keys check`, before dropping a key.

    Its time grows with what is stored, which is why start-up only samples.
    """
    problems = undecryptable_counts()
    if problems:
        raise UndecryptableValue(describe(problems))


def rotate_keys() -> dict[str, int]:
    """Re-encrypt every stored value with the first key; returns the count per field."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        for model, name, column in encrypted_columns():
            rows = 0
            qn = connection.ops.quote_name
            table = model._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {qn(model._meta.pk.column)}, {qn(column)} FROM {qn(table)} "  # noqa: S608
                    f"WHERE {qn(column)} IS NOT NULL AND {qn(column)} <> ''"
                )
                for pk, value in cursor.fetchall():
                    try:
                        rotated = emf.CRYPTER.rotate(value.encode()).decode()
                    except InvalidToken:
                        raise UndecryptableValue(describe({f"{model._meta.label}.{name}": (1, 1)})) from None
                    cursor.execute(
                        f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(model._meta.pk.column)} = %s",  # noqa: S608
                        [rotated, pk],
                    )
                    rows += 1
            counts[f"{model._meta.label}.{name}"] = rows
    return counts


__all__ = [
    "assert_every_value_readable",
    "assert_keys_can_read",
    "describe",
    "encrypted_columns",
    "rotate_keys",
    "sampled_counts",
    "startup_problems",
    "undecryptable_counts",
]
