"""A counter table for /metrics: token refreshes and sync records written, counted by every process."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0006_unicode'),
    ]

    operations = [
        migrations.CreateModel(
            name='MetricCounter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, verbose_name='name')),
                ('label', models.CharField(blank=True, max_length=100, verbose_name='label')),
                ('value', models.BigIntegerField(default=0, verbose_name='value')),
            ],
            options={
                'verbose_name': 'metric counter',
                'verbose_name_plural': 'metric counters',
                'ordering': ['name', 'label'],
                'constraints': [models.UniqueConstraint(fields=('name', 'label'), name='unique_metric_counter')],
            },
        ),
    ]
