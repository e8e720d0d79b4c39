"""Secrets and tokens are encrypted at rest, and a wrong key fails loudly everywhere instead of leaking ciphertext."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from encrypted_model_fields import fields as emf

from connections.crypto import assert_keys_can_read, encrypted_columns
from connections.deploy import deploy
from connections.exceptions import UndecryptableValue
from connections.models import Connection, KeyCanary, Secret, Worker
from connections.secrets import set_secrets

from .conftest import ROOT, database_url_for_subprocess, start_celery_worker, subprocess_env

PUBLIC_URL = "http://127.0.0.1:8000"
FERNET_PREFIX = "gAAAAA"  # every Fernet token starts with these characters (version byte 0x80)


def new_key() -> str:
    return Fernet.generate_key().decode()


def current_key() -> str:
    """The first key of the key list this test process (and its children, by default) runs with."""
    return os.environ["FIELD_ENCRYPTION_KEY"].split(",")[0].strip()


def plaintexts() -> dict[str, str]:
    """Distinctive values, so a match in a column or a file can only be a leak."""
    tag = uuid.uuid4().hex
    return {
        "secret": f"secret-canary-{tag}",
        "access": f"access-canary-{tag}",
        "refresh": f"refresh-canary-{tag}",
        "extra": f"extra-canary-{tag}",
    }


def store(values: dict[str, str]) -> None:
    """One of everything encrypted: a worker secret and a connection's tokens and token response."""
    deploy()
    set_secrets("github", {"GITHUB_CLIENT_SECRET": values["secret"]})
    conn = Connection.objects.get(capability__worker__slug="github", capability__key="githubAuth")
    conn.status = Connection.Status.CONNECTED
    conn.access_token = values["access"]
    conn.refresh_token = values["refresh"]
    conn.has_refresh_token = True
    conn.extra = {"instance_url": values["extra"]}
    conn.save()


def raw_encrypted_values() -> list[str]:
    """Every non-empty value of every encrypted column, as the database holds it."""
    qn = connection.ops.quote_name
    found = []
    with connection.cursor() as cursor:
        for model, _name, column in encrypted_columns():
            cursor.execute(f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} WHERE {qn(column)} IS NOT NULL")
            found.extend(str(value) for (value,) in cursor.fetchall() if value)
    return found


def every_row_of_every_table() -> str:
    qn = connection.ops.quote_name
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {qn(table)}")
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


def run(argv: list[str], key: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=subprocess_env(PUBLIC_URL, FIELD_ENCRYPTION_KEY=key),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def manage(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args], key)


def assert_no_ciphertext(output: str) -> None:
    assert FERNET_PREFIX not in output
    for value in raw_encrypted_values():
        assert value not in output


# --- at rest ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_raw_columns_hold_ciphertext_only():
    values = plaintexts()
    store(values)
    raw = raw_encrypted_values()
    assert len(raw) >= 4
    assert all(value.startswith(FERNET_PREFIX) for value in raw)
    everything = every_row_of_every_table()
    for plain in values.values():
        assert plain not in everything
    # ...and the model layer still reads them back.
    conn = Connection.objects.get(capability__key="githubAuth")
    assert (conn.access_token, conn.refresh_token, conn.extra) == (
        values["access"],
        values["refresh"],
        {"instance_url": values["extra"]},
    )


@pytest.mark.django_db(transaction=True)
def test_database_files_hold_no_plaintext():
    values = plaintexts()
    store(values)
    if connection.vendor == "sqlite":
        database = Path(connection.settings_dict["NAME"])
        dumps = {path: path.read_bytes() for path in (database, Path(f"{database}-wal")) if path.exists()}
        assert database in dumps
    else:
        if shutil.which("pg_dump") is None:
            pytest.skip("pg_dump is not installed")
        dump = subprocess.run(
            ["pg_dump", "--data-only", database_url_for_subprocess()], capture_output=True, check=True, timeout=120
        )
        dumps = {"pg_dump": dump.stdout}
    # What was read is the live data: it holds the secret's name, stored next to its encrypted value.
    assert b"GITHUB_CLIENT_SECRET" in b"".join(dumps.values())
    for where, data in dumps.items():
        for plain in values.values():
            assert plain.encode() not in data, f"{plain} in plaintext in {where}"


# --- reading with a wrong key -----------------------------------------------------------------


@pytest.mark.django_db
def test_strict_field_raises_instead_of_returning_ciphertext():
    deploy()
    set_secrets("github", {"GITHUB_CLIENT_ID": "readable"})
    foreign = Fernet(new_key()).encrypt(b"written-with-another-key").decode()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE connections_secret SET value = %s", [foreign])

    with pytest.raises(UndecryptableValue) as exc:
        Secret.objects.get(name="GITHUB_CLIENT_ID").value  # noqa: B018
    assert "connections.Secret.value cannot be decrypted with the configured FIELD_ENCRYPTION_KEY" in str(exc.value)
    assert foreign not in str(exc.value)
    with pytest.raises(UndecryptableValue):
        list(Secret.objects.values_list("value", flat=True))

    with pytest.raises(UndecryptableValue) as exc:
        assert_keys_can_read()
    assert "FIELD_ENCRYPTION_KEY cannot read stored secrets (1 of 1 in connections.Secret.value)" in str(exc.value)


@pytest.mark.django_db(transaction=True)
def test_check_fails_with_a_different_key_and_prints_no_ciphertext():
    store(plaintexts())

    good = manage("check", "--database", "default", key=current_key())
    assert good.returncode == 0, good.stderr

    bad = manage("check", "--database", "default", key=new_key())
    assert bad.returncode != 0
    assert "connections.E001" in bad.stderr
    assert "FIELD_ENCRYPTION_KEY cannot read stored secrets" in bad.stderr
    assert "connections.Secret.value" in bad.stderr
    assert_no_ciphertext(bad.stdout + bad.stderr)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", [["workers", "keys", "rotate"], ["workers", "deploy"]])
def test_commands_that_read_encrypted_values_fail_loudly_with_a_wrong_key(command):
    store(plaintexts())
    before = sorted(raw_encrypted_values())
    result = manage(*command, key=new_key())
    assert result.returncode != 0
    assert sorted(raw_encrypted_values()) == before  # a failed rotation re-encrypts nothing
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: ")
    assert "cannot" in lines[0] and "FIELD_ENCRYPTION_KEY" in lines[0]
    assert_no_ciphertext(result.stdout + result.stderr)


@pytest.mark.django_db(transaction=True)
def test_wsgi_application_refuses_to_load_with_a_wrong_key():
    store(plaintexts())
    good = run([sys.executable, "-c", "import workers_site.wsgi"], current_key())
    assert good.returncode == 0, good.stderr

    bad = run([sys.executable, "-c", "import workers_site.wsgi"], new_key())
    assert bad.returncode != 0
    assert "UndecryptableValue: FIELD_ENCRYPTION_KEY cannot read stored secrets" in bad.stderr
    assert_no_ciphertext(bad.stdout + bad.stderr)


@pytest.mark.django_db(transaction=True)
def test_celery_worker_refuses_to_start_with_a_wrong_key(tmp_path):
    store(plaintexts())
    # With the right key the same command starts (and is stopped again): the refusal below is the key's doing.
    worker = start_celery_worker(PUBLIC_URL, tmp_path / "good.log", concurrency=1, pool="solo")
    worker.stop()

    bad = run(
        [sys.executable, "-m", "celery", "-A", "workers_site", "worker", "--pool", "solo", "--loglevel", "INFO"],
        new_key(),
        timeout=60,
    )
    assert bad.returncode != 0
    output = bad.stdout + bad.stderr
    assert "Refusing to start the Celery worker: FIELD_ENCRYPTION_KEY cannot read stored secrets" in output
    assert " ready." not in output
    assert_no_ciphertext(output)


# --- rotation ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rotate_re_encrypts_everything_so_the_new_key_alone_reads_it():
    values = plaintexts()
    store(values)
    old, new = current_key(), new_key()

    rotated = manage("workers", "keys", "rotate", key=f"{new},{old}")
    assert rotated.returncode == 0, rotated.stderr
    assert "connections.Secret.value: 1 value(s) re-encrypted" in rotated.stdout
    assert_no_ciphertext(rotated.stdout + rotated.stderr)

    raw = raw_encrypted_values()
    assert raw
    decrypted = [Fernet(new.encode()).decrypt(value.encode()).decode() for value in raw]
    for plain in values.values():
        assert any(plain in text for text in decrypted), plain
    for value in raw:
        with pytest.raises(InvalidToken):
            Fernet(old.encode()).decrypt(value.encode())

    assert manage("check", "--database", "default", key=new).returncode == 0
    assert manage("check", "--database", "default", key=old).returncode != 0


@pytest.mark.django_db(transaction=True)
def test_rotation_stopped_by_an_unreadable_value_changes_nothing():
    store(plaintexts())
    # Written under a key nobody lists, in a column that rotation reaches after the others.
    foreign = Fernet(new_key()).encrypt(b'{"lost": true}').decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_connection SET extra = %s WHERE capability_id = %s",
            [foreign, Connection.objects.get(capability__key="githubAuth").capability_id],
        )
    before = sorted(raw_encrypted_values())

    result = manage("workers", "keys", "rotate", key=f"{new_key()},{current_key()}")

    assert result.returncode != 0
    assert "connections.Connection.extra" in result.stderr
    assert sorted(raw_encrypted_values()) == before


# --- start-up: a bounded check -----------------------------------------------------------------


def many_secrets(count: int) -> list[int]:
    """`count` stored secrets under the current key, oldest first (their primary keys)."""
    worker, _ = Worker.objects.get_or_create(slug="many", defaults={"module": "many"})
    Secret.objects.bulk_create(Secret(worker=worker, name=f"S{i}", value=f"value-{i}") for i in range(count))
    return list(Secret.objects.filter(worker=worker).order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db
def test_start_up_decrypts_a_bounded_sample_not_every_stored_value(monkeypatch):
    many_secrets(600)
    decrypted = []
    real = emf.CRYPTER.decrypt
    monkeypatch.setattr(emf.CRYPTER, "decrypt", lambda token, *a: decrypted.append(token) or real(token, *a))

    assert_keys_can_read()

    # 600 values stored: start-up read the key canary and at most 60 sampled values.
    assert 0 < len(decrypted) <= 61
    assert KeyCanary.objects.get().value == "workers key canary"


@pytest.mark.django_db
def test_values_under_a_dropped_key_are_refused_even_when_the_canary_reads():
    """A key dropped before `keys rotate` finished: the oldest values are the ones written under it."""
    pks = many_secrets(600)
    assert_keys_can_read()  # writes the canary under the current key
    dropped = Fernet(new_key())
    with connection.cursor() as cursor:
        for pk in pks[:3]:
            cursor.execute(
                "UPDATE connections_secret SET value = %s WHERE id = %s", [dropped.encrypt(b"old").decode(), pk]
            )

    with pytest.raises(UndecryptableValue) as exc:
        assert_keys_can_read()
    message = str(exc.value)
    assert "FIELD_ENCRYPTION_KEY cannot read stored secrets (3 of " in message
    assert "in connections.Secret.value" in message
    assert "KeyCanary" not in message


@pytest.mark.django_db(transaction=True)
def test_the_key_canary_refuses_a_wrong_key_before_any_secret_is_stored_and_follows_rotation():
    deploy()  # workers and capabilities, but no secret or token yet
    assert raw_encrypted_values() == []
    old = current_key()
    assert manage("check", "--database", "default", key=old).returncode == 0  # writes the canary

    bad = manage("check", "--database", "default", key=new_key())
    assert bad.returncode != 0
    assert "connections.E001" in bad.stderr
    assert "1 of 1 in connections.KeyCanary.value (the key canary)" in bad.stderr
    assert_no_ciphertext(bad.stdout + bad.stderr)

    new = new_key()
    assert manage("workers", "keys", "rotate", key=f"{new},{old}").returncode == 0
    assert manage("check", "--database", "default", key=new).returncode == 0
    assert manage("check", "--database", "default", key=old).returncode != 0


@pytest.mark.django_db(transaction=True)
def test_keys_check_reads_every_value_that_start_up_only_samples():
    pks = many_secrets(600)
    middle = pks[300]  # neither among the newest nor the oldest: start-up may well not look at it
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_secret SET value = %s WHERE id = %s",
            [Fernet(new_key()).encrypt(b"under a dropped key").decode(), middle],
        )

    result = manage("workers", "keys", "check", key=current_key())
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: FIELD_ENCRYPTION_KEY cannot read stored secrets (1 of 600 in")
    assert_no_ciphertext(result.stdout + result.stderr)

    Secret.objects.filter(pk=middle).update(value="readable again")
    result = manage("workers", "keys", "check", key=current_key())
    assert result.returncode == 0, result.stderr
    assert "Every stored secret and token can be read with FIELD_ENCRYPTION_KEY." in result.stdout


# --- blank values ------------------------------------------------------------------------------


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_blank_encrypted_value_is_stored_blank_and_read_back_blank():
    values = plaintexts()
    store(values)
    conn = Connection.objects.get(capability__key="githubAuth")
    conn.refresh_token = ""
    conn.save()

    assert raw_column("connections_connection", "refresh_token", conn.pk) == ""
    assert raw_column("connections_connection", "access_token", conn.pk).startswith(FERNET_PREFIX)
    assert raw_column("connections_oauthcapability", "client_secret_literal", conn.capability_id) == ""
    conn = Connection.objects.get(pk=conn.pk)
    assert (conn.access_token, conn.refresh_token) == (values["access"], "")
    # A JSON "" is a value, not a blank column.
    conn.extra = ""
    conn.save()
    assert raw_column("connections_connection", "extra", conn.pk).startswith(FERNET_PREFIX)
    assert Connection.objects.get(pk=conn.pk).extra == ""


@pytest.mark.django_db(transaction=True)
def test_migration_turns_stored_ciphertexts_of_blank_into_blank():
    values = plaintexts()
    store(values)
    conn = Connection.objects.get(capability__key="githubAuth")
    foreign_blank = Fernet(new_key()).encrypt(b"").decode()
    short = emf.encrypt_str("short").decode()  # as long as a blank's ciphertext, but not blank
    executor = MigrationExecutor(connection)
    executor.migrate([("connections", "0011_key_canary")])
    # What the fields wrote before 0012: "" encrypted like any other value.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_connection SET refresh_token = %s, access_token = %s WHERE id = %s",
            [emf.encrypt_str("").decode(), short, conn.pk],
        )
        cursor.execute(
            "UPDATE connections_oauthcapability SET client_secret_literal = %s WHERE id = %s",
            [foreign_blank, conn.capability_id],
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("connections"))

    assert raw_column("connections_connection", "refresh_token", conn.pk) == ""
    assert raw_column("connections_connection", "access_token", conn.pk) == short
    # Under a key not configured: left as it was, for the start-up check to report.
    assert raw_column("connections_oauthcapability", "client_secret_literal", conn.capability_id) == foreign_blank
    assert Secret.objects.get(name="GITHUB_CLIENT_SECRET").value == values["secret"]
    conn = Connection.objects.get(pk=conn.pk)
    assert (conn.access_token, conn.refresh_token) == ("short", "")
