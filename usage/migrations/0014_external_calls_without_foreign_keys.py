"""External calls lose their database foreign keys and the run's and the job's own indexes
(``external_call_run_idx`` starts with the run): the OTLP ingest resolves both in its own
transaction, and the checks at commit cost a fifth of a 1,000-span request's database time.

Dropping a foreign key locks the table it points at too: ``usage_run`` and ``usage_job`` are held
(ACCESS EXCLUSIVE) with the external calls until the schema's migration commits. It gives up
after 10 s (``lock_timeout``) rather than queue the tenant's runs behind a long transaction;
``migrate_schemas`` then fails for that schema, and running it again finishes the job."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0013_event_indexes_run_only'),
    ]

    operations = [
        migrations.RunSQL("SET LOCAL lock_timeout = '10s'", reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='externalcall',
            name='job',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='external_calls', to='usage.job'),
        ),
        migrations.AlterField(
            model_name='externalcall',
            name='run',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='external_calls', to='usage.run'),
        ),
        # the same bound when migrating back (operations then run last to first)
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql="SET LOCAL lock_timeout = '10s'"),
    ]
