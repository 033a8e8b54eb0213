# The run ledger's stripes (usage.services.rollups.rollup_stripe): a run's day has a row per stripe.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0011_stepdaily_stripes"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="runledger",
            name="run_ledger_key",
        ),
        migrations.AddField(
            model_name="runledger",
            name="stripe",
            field=models.SmallIntegerField(db_default=0),
        ),
        migrations.AddConstraint(
            model_name="runledger",
            constraint=models.UniqueConstraint(
                fields=("run", "day", "stripe"), name="run_ledger_key"
            ),
        ),
    ]
