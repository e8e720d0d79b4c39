"""Records get a digest of their properties, and replace-mode cycles a list of the unchanged keys each page saw.

Existing records get their digest here, so the first sync after the upgrade finds them unchanged
instead of rewriting them all.
"""

import hashlib
import json

import django.db.models.deletion
from django.db import migrations, models


def _digest(properties):
    # The same as connections.runner.syncs.content_digest at the time of this migration.
    text = json.dumps(properties, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def fill_digests(apps, schema_editor):
    Record = apps.get_model("connections", "Record")
    batch = []
    for record in Record.objects.only("id", "properties").order_by("id").iterator(chunk_size=2000):
        record.digest = _digest(record.properties)
        batch.append(record)
        if len(batch) == 1000:
            Record.objects.bulk_update(batch, ["digest"])
            batch = []
    if batch:
        Record.objects.bulk_update(batch, ["digest"])


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0012_blank_encrypted_values'),
    ]

    operations = [
        migrations.AddField(
            model_name='record',
            name='digest',
            field=models.CharField(blank=True, default='', max_length=32),
        ),
        migrations.CreateModel(
            name='SyncSeenKeys',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cycle', models.PositiveIntegerField()),
                ('page', models.PositiveIntegerField()),
                ('keys', models.JSONField(default=list)),
                ('sync', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='connections.sync')),
            ],
            options={
                'indexes': [models.Index(fields=['sync', 'cycle'], name='seen_keys_sync_cycle')],
            },
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop, elidable=True),
    ]
