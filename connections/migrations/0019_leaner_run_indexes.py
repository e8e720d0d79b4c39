"""A run's row is written to the indexes it needs only (see Run.Meta): status alone, Django's LIKE
twins of status and of the replay digest, and the full indexes of the optional links and of
finished_at go; partial ones replace them.

The plain indexes are dropped by name as introspection finds them, and the replay digest's unique
constraint is renamed on PostgreSQL, rather than by AlterField and AddConstraint: on SQLite those
copy the whole runs table into a new one once per field, and on PostgreSQL they drop and add again
each foreign key, which checks every run, with the table locked meanwhile.
"""

import django.db.models.deletion
from django.db import migrations, models

# The columns whose index of their own goes (the run's).
PLAIN = ("status", "api_key_id", "finished_at", "sync_id", "tool_id", "webhook_event_id")
DIGEST = "replay_digest"
CONSTRAINT = "unique_event_replay_digest"


def _indexes(schema_editor, table):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def drop_plain_indexes(apps, schema_editor):
    run_table = apps.get_model("connections", "Run")._meta.db_table
    quote = schema_editor.quote_name
    for name, info in _indexes(schema_editor, run_table).items():
        single = len(info["columns"] or ()) == 1 and info["columns"][0] in PLAIN
        if single and info["index"] and not info["unique"] and not info["primary_key"]:
            schema_editor.execute(f"DROP INDEX {quote(name)}")  # the LIKE twin too: same column
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite's unique column stands for the constraint; there is no LIKE index there
    event_table = apps.get_model("connections", "WebhookEvent")._meta.db_table
    for name, info in _indexes(schema_editor, event_table).items():
        if info["columns"] != [DIGEST] or info["primary_key"]:
            continue
        if info["unique"]:  # a constraint (introspection marks it so, not as an index)
            rename = f"RENAME CONSTRAINT {quote(name)} TO {quote(CONSTRAINT)}"
            schema_editor.execute(f"ALTER TABLE {quote(event_table)} {rename}")
        elif info["index"]:
            schema_editor.execute(f"DROP INDEX {quote(name)}")


def _create_index(schema_editor, table, column, suffix=""):
    """The index Django made for `column` (its LIKE twin with suffix "_like"), under Django's name for it."""
    quote = schema_editor.quote_name
    name = schema_editor._create_index_name(table, [column], suffix=suffix)
    operators = " varchar_pattern_ops" if suffix == "_like" else ""
    schema_editor.execute(f"CREATE INDEX {quote(name)} ON {quote(table)} ({quote(column)}{operators})")


def create_plain_indexes(apps, schema_editor):
    table = apps.get_model("connections", "Run")._meta.db_table
    for column in PLAIN:
        _create_index(schema_editor, table, column)
    if schema_editor.connection.vendor != "postgresql":
        return
    _create_index(schema_editor, table, "status", "_like")
    event_table = apps.get_model("connections", "WebhookEvent")._meta.db_table
    quote = schema_editor.quote_name
    key = f"{event_table}_{DIGEST}_key"  # PostgreSQL's own name for the column's UNIQUE, as first created
    schema_editor.execute(f"ALTER TABLE {quote(event_table)} RENAME CONSTRAINT {quote(CONSTRAINT)} TO {quote(key)}")
    _create_index(schema_editor, event_table, DIGEST, "_like")


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0018_record_database_no_own_index"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="run",
            name="run_status_finished",
        ),
        migrations.RemoveIndex(
            model_name="run",
            name="run_sync_queued",
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="run",
                    name="api_key",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="connections.apikey",
                        verbose_name="API key",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="finished_at",
                    field=models.DateTimeField(blank=True, null=True, verbose_name="finished"),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("queued", "queued"),
                            ("running", "running"),
                            ("succeeded", "succeeded"),
                            ("failed", "failed"),
                            ("retrying", "retrying"),
                            ("skipped", "skipped"),
                            ("cancelled", "cancelled"),
                        ],
                        default="queued",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="sync",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="connections.sync",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="tool",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="connections.tool",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="webhook_event",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="connections.webhookevent",
                    ),
                ),
                migrations.AlterField(
                    model_name="webhookevent",
                    name="replay_digest",
                    field=models.CharField(blank=True, editable=False, max_length=64, null=True),
                ),
                migrations.AddConstraint(
                    model_name="webhookevent",
                    constraint=models.UniqueConstraint(fields=("replay_digest",), name="unique_event_replay_digest"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_plain_indexes, create_plain_indexes)],
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)),
                fields=["status", "finished_at"],
                name="run_status_finished",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("sync__isnull", False)), fields=["sync", "queued_at"], name="run_sync_queued"
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)), fields=["finished_at"], name="run_finished"
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(condition=models.Q(("tool__isnull", False)), fields=["tool"], name="run_tool"),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("webhook_event__isnull", False)), fields=["webhook_event"], name="run_webhook_event"
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(condition=models.Q(("api_key__isnull", False)), fields=["api_key"], name="run_api_key"),
        ),
    ]
