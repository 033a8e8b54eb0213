"""Foreign keys of ingest-written tables without an index of their own: each column leads a key
or index of its table already (usage.models).

Dropping an index locks its table until the schema's migration commits: the wait for that lock is
bounded (``factory_portal.pg.lock_wait_bounded``)."""

import django.db.models.deletion
from django.db import migrations, models

from factory_portal.pg import lock_wait_bounded


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0016_run_id_trigrams_upper_case'),
    ]

    operations = lock_wait_bounded(
        migrations.AlterField(
            model_name='job',
            name='run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='usage.run'),
        ),
        migrations.AlterField(
            model_name='run',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='usage.project'),
        ),
        migrations.AlterField(
            model_name='runallocatedcost',
            name='run',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='allocated', to='usage.run'),
        ),
        migrations.AlterField(
            model_name='runledger',
            name='run',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='ledger', to='usage.run'),
        ),
        migrations.AlterField(
            model_name='runlog',
            name='run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='logs', to='usage.run'),
        ),
        migrations.AlterField(
            model_name='spanerror',
            name='run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='errors', to='usage.run'),
        ),
    )
