"""An LLM call keeps its duration (``LlmUsageEvent.duration_ms``): an OTLP GenAI span is stored
once, as its usage event, instead of also as an ``ExternalCall`` of kind "llm" for the run's
waterfall (calls stored before keep their ExternalCall row, and readers take both).

A nullable column without a default: PostgreSQL adds it to the partitioned table and every
partition as a change of the catalog, without rewriting a row. It needs the tables' ACCESS
EXCLUSIVE lock for that moment, so it gives up after 10 s (``lock_timeout``) rather than queue
the tenant's ingest behind a long transaction; ``migrate_schemas`` then fails for that schema,
and running it again finishes the job. The code that writes and reads the column must not serve
a schema before this migration has reached it (README, "Errors from spans").

Migrating back first writes the timing of every LLM call stored since as the ExternalCall row the
code before kept (trace and span from the event id ``otlp-{trace}-{span}``, the start its
duration before its end, an error when its span reported one), then drops the column."""

from django.db import migrations, models

from factory_portal.pg import lock_wait_bounded

# The reverse: LLM calls' timings back into ExternalCall rows of kind "llm", as the code before
# this migration stored them (usage.services.otlp before usage 0015).
CALLS_BACK = """
INSERT INTO usage_externalcall
    (trace_id, span_id, run_id, job_id, service, kind, model, started_at, duration_ms, status, error)
SELECT substr(e.event_id, 6, 32), right(e.event_id, 16), e.run_id, e.job_id, e.provider, 'llm',
       e.model, e.occurred_at - e.duration_ms * interval '1 millisecond', e.duration_ms,
       CASE WHEN f.span_id IS NULL THEN 'ok' ELSE 'error' END,
       coalesce(left(coalesce(nullif(f.type, ''), f.message), 500), '')
FROM usage_llmusageevent e
LEFT JOIN LATERAL (
    SELECT s.span_id, s.type, s.message FROM usage_spanerror s
    WHERE s.run_id = e.run_id AND s.trace_id = substr(e.event_id, 6, 32)
      AND s.span_id = right(e.event_id, 16)
    ORDER BY s.seq, s.id LIMIT 1
) f ON true
WHERE e.duration_ms IS NOT NULL AND e.event_id LIKE 'otlp-%'
ON CONFLICT (trace_id, span_id) DO NOTHING
"""


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0014_external_calls_without_foreign_keys'),
    ]

    operations = lock_wait_bounded(
        migrations.AddField(
            model_name='llmusageevent',
            name='duration_ms',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        # operations run last to first when migrating back: the rows first, then the column
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=CALLS_BACK),
    )
