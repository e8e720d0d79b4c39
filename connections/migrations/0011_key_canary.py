"""A one-row table holding a value encrypted under the current key: start-up checks it, not every value."""

from django.db import migrations, models

import connections.fields


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0010_overview'),
    ]

    operations = [
        migrations.CreateModel(
            name='KeyCanary',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('value', connections.fields.EncryptedTextField(verbose_name='value')),
            ],
            options={
                'verbose_name': 'key canary',
                'verbose_name_plural': 'key canaries',
            },
        ),
    ]
