"""External calls lose their database foreign keys and the run's and the job's own indexes
(``external_call_run_idx`` starts with the run): the OTLP ingest resolves both in its own
transaction, and the checks at commit cost a fifth of a 1,000-span request's database time."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0013_event_indexes_run_only'),
    ]

    operations = [
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
    ]
