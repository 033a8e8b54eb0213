"""The metric rollups' series without an index of its own: each table's key (series, start) leads
with it (runtime.models).

Dropping an index locks its table until the schema's migration commits: the wait for that lock is
bounded (``factory_portal.pg.lock_wait_bounded``)."""

import django.db.models.deletion
from django.db import migrations, models

from factory_portal.pg import lock_wait_bounded


class Migration(migrations.Migration):

    dependencies = [
        ('runtime', '0002_metric_fillfactor'),
    ]

    operations = lock_wait_bounded(
        migrations.AlterField(
            model_name='metrichour',
            name='series',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runtime.metricseries'),
        ),
        migrations.AlterField(
            model_name='metricminute',
            name='series',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runtime.metricseries'),
        ),
    )
