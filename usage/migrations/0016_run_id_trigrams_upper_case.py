from django.db import migrations

from factory_portal.pg import lock_wait_bounded

# The run-id substring search's trigram index holds the upper-cased id. On the plain column,
# gin_trgm_ops (which answers equality too) was the planner's choice for every batch's
# ``run_id = ANY(...)`` lookup instead of the unique index: 80 ms for 28 ids among 3,000 runs
# while the GIN pending list waited for a vacuum, 1.4 ms after one, against well under a
# millisecond on the unique index. An index of ``upper(run_id)`` serves ``UPPER(run_id::text)
# LIKE ...`` (the search's ``icontains``) and never an equality on the column.
#
# Written in SQL: Django builds an expression with an operator class only when
# django.contrib.postgres is installed, which this project does not need otherwise. The model
# lists no trigram index (usage.models.Run), so no later migration touches this one.
#
# The second plain index of run ids for prefix search (varchar_pattern_ops) is dropped: the
# unique column has Django's own ``usage_run_run_id_..._like`` index of the same kind.
#
# Building and dropping the indexes locks usage_run until the schema's migration commits: the wait
# for that lock is bounded (factory_portal.pg.lock_wait_bounded).
UPPER_TRGM = (
    "CREATE INDEX run_id_upper_trgm_idx ON usage_run"
    " USING gin ((upper(run_id::text)) public.gin_trgm_ops)"
)
PLAIN_TRGM = "CREATE INDEX run_id_trgm_idx ON usage_run USING gin (run_id public.gin_trgm_ops)"


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0015_llm_call_duration'),
    ]

    operations = lock_wait_bounded(
        migrations.RemoveIndex(
            model_name='run',
            name='run_id_prefix_idx',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name='run', name='run_id_trgm_idx'),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[UPPER_TRGM, "DROP INDEX run_id_trgm_idx"],
                    reverse_sql=[PLAIN_TRGM, "DROP INDEX run_id_upper_trgm_idx"],
                ),
            ],
        ),
    )
