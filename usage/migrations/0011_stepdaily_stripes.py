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
    ]
