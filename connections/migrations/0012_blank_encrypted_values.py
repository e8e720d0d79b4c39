"""Blank encrypted text values are stored blank: turn the ciphertexts of "" written before into "".

Reads in chunks of CHUNK rows by primary key (bounded memory at any size) and decrypts only the
values long enough to be the ciphertext of "" (every Fernet token of 0 to 15 bytes is 100
characters). A value the configured keys cannot read is left as it is: the start-up check
reports a wrong key, and the field reads the old form too.
"""

from cryptography.fernet import InvalidToken
from django.db import migrations
from encrypted_model_fields import fields as emf

CHUNK = 1000
SHORT_TOKEN_LENGTH = 100
# (model, column) of every EncryptedTextField; the JSON field's "" is '""', never blank.
COLUMNS = [
    ("Secret", "value"),
    ("OAuthCapability", "client_secret_literal"),
    ("Connection", "access_token"),
    ("Connection", "refresh_token"),
    ("AuthorizationAttempt", "code_verifier"),
]


def _chunks(schema_editor, sql, pk):
    """Yield lists of rows of `sql` (which takes the last primary key seen), CHUNK at a time."""
    last = None
    with schema_editor.connection.cursor() as cursor:
        while True:
            where = "" if last is None else f" AND {pk} > %s"
            cursor.execute(sql.format(where=where) + f" ORDER BY {pk} LIMIT {CHUNK}", [] if last is None else [last])
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]


def _tables(apps, schema_editor):
    qn = schema_editor.connection.ops.quote_name
    for model_name, column in COLUMNS:
        model = apps.get_model("connections", model_name)
        yield qn(model._meta.db_table), qn(model._meta.pk.column), qn(column)


def blank_to_blank(apps, schema_editor):
    for table, pk, column in _tables(apps, schema_editor):
        sql = f"SELECT {pk}, {column} FROM {table} WHERE LENGTH({column}) = {SHORT_TOKEN_LENGTH}{{where}}"
        for rows in _chunks(schema_editor, sql, pk):
            blank = []
            for key, value in rows:
                try:
                    if emf.CRYPTER.decrypt(str(value).encode()) == b"":
                        blank.append((key,))
                except InvalidToken:
                    pass
            if blank:
                with schema_editor.connection.cursor() as cursor:
                    cursor.executemany(f"UPDATE {table} SET {column} = '' WHERE {pk} = %s", blank)


def blank_to_ciphertext(apps, schema_editor):
    """The fields before this migration cannot read a blank value: encrypt "" again."""
    for table, pk, column in _tables(apps, schema_editor):
        sql = f"SELECT {pk} FROM {table} WHERE {column} = ''{{where}}"
        for rows in _chunks(schema_editor, sql, pk):
            with schema_editor.connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",
                    [(emf.encrypt_str("").decode(), key) for (key,) in rows],
                )


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0011_key_canary'),
    ]

    operations = [
        migrations.RunPython(blank_to_blank, blank_to_ciphertext),
    ]
