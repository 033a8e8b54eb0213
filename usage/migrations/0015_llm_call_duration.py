"""An LLM call keeps its duration (``LlmUsageEvent.duration_ms``): an OTLP GenAI span is stored
once, as its usage event, instead of also as an ``ExternalCall`` of kind "llm" for the run's
waterfall (calls stored before keep their ExternalCall row, and readers take both).

A nullable column without a default: PostgreSQL adds it to the partitioned table and every
partition as a change of the catalog, without rewriting a row. It needs the tables' ACCESS
EXCLUSIVE lock for that moment, so it gives up after 10 s (``lock_timeout``) rather than queue
the tenant's ingest behind a long transaction; ``migrate_schemas`` then fails for that schema,
and running it again finishes the job."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0014_external_calls_without_foreign_keys'),
    ]

    operations = [
        migrations.RunSQL("SET LOCAL lock_timeout = '10s'", reverse_sql=migrations.RunSQL.noop),
        migrations.AddField(
            model_name='llmusageevent',
            name='duration_ms',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        # the same bound when migrating back (operations then run last to first)
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql="SET LOCAL lock_timeout = '10s'"),
    ]
