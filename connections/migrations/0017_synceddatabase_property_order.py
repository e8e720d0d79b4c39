from django.db import migrations, models


def fill_property_order(apps, schema_editor):
    # The stored order is the best known until the next deploy writes the code's own.
    SyncedDatabase = apps.get_model("connections", "SyncedDatabase")
    for database in SyncedDatabase.objects.only("pk", "properties"):
        SyncedDatabase.objects.filter(pk=database.pk).update(property_order=list(database.properties))


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0016_run_due_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="synceddatabase",
            name="property_order",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.RunPython(fill_property_order, migrations.RunPython.noop),
    ]
