"""A record's database has no index of its own: the two indexes on (database, key) and
(database, sort_key) begin with it and serve every lookup by database, and a third index to update
cost a sync's writing.

The index is dropped by name as introspection finds it, rather than by AlterField, which on SQLite
copies the whole records table into a new one.
"""

import django.db.models.deletion
from django.db import migrations, models

# The name Django gave the index (the same on PostgreSQL and SQLite).
INDEX = "connections_record_database_id_ade1813c"


def drop_index(apps, schema_editor):
    connection = schema_editor.connection
    Record = apps.get_model("connections", "Record")
    table = Record._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    for name, info in constraints.items():
        if info["index"] and info["columns"] == ["database_id"] and not info["unique"] and not info["primary_key"]:
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_index(apps, schema_editor):
    Record = apps.get_model("connections", "Record")
    quote = schema_editor.quote_name
    schema_editor.execute(f"CREATE INDEX {quote(INDEX)} ON {quote(Record._meta.db_table)} ({quote('database_id')})")


class Migration(migrations.Migration):

    dependencies = [
        ("connections", "0017_synceddatabase_property_order"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="record",
                    name="database",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="records",
                        to="connections.synceddatabase",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        ),
    ]
