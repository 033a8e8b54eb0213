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
        # Going back needs one row per key again: refused, with the reason, while a key has rows
        # in more than one stripe (rollups_rebuild writes stripe 0 only).
        migrations.RunSQL(
            migrations.RunSQL.noop,
            reverse_sql="""
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM usage_runledger WHERE stripe <> 0) THEN
        RAISE EXCEPTION 'usage_runledger has rows in stripes other than 0: rebuild the rollups '
            '(usage.services.rollups.rollups_rebuild) with ingest stopped, then migrate back';
    END IF;
END $$;
""",
        ),
    ]
