# The step rollup's stripes (usage.services.rollups.rollup_stripe): a key has a row per stripe.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0010_event_partitions"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="stepdaily",
            name="step_daily_key",
        ),
        migrations.AddField(
            model_name="stepdaily",
            name="stripe",
            field=models.SmallIntegerField(db_default=0),
        ),
        migrations.AddConstraint(
            model_name="stepdaily",
            constraint=models.UniqueConstraint(
                fields=("day", "template", "step_name", "stripe"), name="step_daily_key"
            ),
        ),
        # Going back needs one row per key again: refused, with the reason, while a key has rows
        # in more than one stripe (rollups_rebuild writes stripe 0 only).
        migrations.RunSQL(
            migrations.RunSQL.noop,
            reverse_sql="""
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM usage_stepdaily WHERE stripe <> 0) THEN
        RAISE EXCEPTION 'usage_stepdaily has rows in stripes other than 0: rebuild the rollups '
            '(usage.services.rollups.rollups_rebuild) with ingest stopped, then migrate back';
    END IF;
END $$;
""",
        ),
    ]
