"""Runs whose message the broker did not take are marked, so the lost-run beat task sends them again."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0014_run_cancelled'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='unsent',
            field=models.BooleanField(default=False, help_text='The broker refused its message; it is sent again every minute.', verbose_name='not sent'),
        ),
    ]
