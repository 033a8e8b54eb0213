"""External calls lose their database foreign keys and the run's and the job's own indexes
(``external_call_run_idx`` starts with the run): the OTLP ingest resolves both in its own
transaction, and the checks at commit cost a fifth of a 1,000-span request's database time.

Dropping a foreign key locks the table it points at too: ``usage_run`` and ``usage_job`` are held
(ACCESS EXCLUSIVE) with the external calls until the schema's migration commits. It gives up
after 10 s (``lock_timeout``) rather than queue the tenant's runs behind a long transaction;
``migrate_schemas`` then fails for that schema, and running it again finishes the job."""

import django.db.models.deletion
from django.db import migrations, models

from factory_portal.pg import lock_wait_bounded


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0013_event_indexes_run_only'),
    ]

    operations = lock_wait_bounded(
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
    )
