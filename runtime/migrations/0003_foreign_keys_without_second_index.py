"""The metric rollups' series without an index of its own: each table's key (series, start) leads
with it (runtime.models).

Dropping an index locks its table (ACCESS EXCLUSIVE) until the schema's migration commits. It gives
up after 10 s (``lock_timeout``) rather than queue the tenant's ingest and pages behind a long
transaction; ``migrate_schemas`` then fails for that schema, and running it again finishes the job."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runtime', '0002_metric_fillfactor'),
    ]

    operations = [
        migrations.RunSQL("SET LOCAL lock_timeout = '10s'", reverse_sql=migrations.RunSQL.noop),
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
        # the same bound when migrating back (operations then run last to first)
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql="SET LOCAL lock_timeout = '10s'"),
    ]
