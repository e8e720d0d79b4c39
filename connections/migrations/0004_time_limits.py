"""Per-tool and per-sync time limits, recorded by deploy from `worker.tool/sync(..., time_limit=)`."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0003_webhook_hardening"),
    ]

    operations = [
        migrations.AddField(
            model_name="sync",
            name="time_limit",
            field=models.FloatField(
                blank=True,
                help_text="Seconds; empty: WORKERS_SYNC_PAGE_TIME_LIMIT.",
                null=True,
                verbose_name="time limit per page",
            ),
        ),
        migrations.AddField(
            model_name="tool",
            name="time_limit",
            field=models.FloatField(
                blank=True, help_text="Seconds; empty: WORKERS_TOOL_TIME_LIMIT.", null=True, verbose_name="time limit"
            ),
        ),
    ]
