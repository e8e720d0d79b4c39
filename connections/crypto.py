"""Checks that the configured keys can read what is stored, and re-encrypts under the first key."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import DatabaseError, connection, transaction
from encrypted_model_fields import fields as emf

from .exceptions import UndecryptableValue


def encrypted_columns() -> list[tuple[type, str, str]]:
    """(model, field name, column) for every encrypted field of every installed model."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, emf.EncryptedMixin):
                found.append((model, field.name, field.column))
    return found


def undecryptable_counts() -> dict[str, tuple[int, int]]:
    """{"app.Model.field": (unreadable, stored)} for columns where some value cannot be decrypted.

    Reads the raw column, so it works whatever the field's own decryption does.
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
            for (value,) in cursor.fetchall():
                if isinstance(value, memoryview):
                    value = bytes(value).decode()
                if value == "":
                    continue
                total += 1
                try:
                    emf.CRYPTER.decrypt(value.encode())
                except InvalidToken:
                    bad += 1
        if bad:
            problems[f"{model._meta.label}.{name}"] = (bad, total)
    return problems


def describe(problems: dict[str, tuple[int, int]]) -> str:
    parts = ", ".join(f"{bad} of {total} in {label}" for label, (bad, total) in sorted(problems.items()))
    return (
        f"FIELD_ENCRYPTION_KEY cannot read stored secrets ({parts}). Set FIELD_ENCRYPTION_KEY to the key "
        "they were written with (several keys may be given comma-separated: the first encrypts, all decrypt)."
    )


def assert_keys_can_read() -> None:
    """Raise UndecryptableValue when any stored value cannot be read; quiet when the schema is absent."""
    try:
        problems = undecryptable_counts()
    except DatabaseError:
        return  # not migrated yet, or the database is down: the health check reports that
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


__all__ = ["assert_keys_can_read", "describe", "encrypted_columns", "rotate_keys", "undecryptable_counts"]
