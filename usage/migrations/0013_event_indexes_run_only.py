"""The raw event tables keep only their run index and primary key: the project's and the job's
indexes (Django's default for a foreign key) served no query and cost the ingest about a tenth of
its database time. Dropping a partitioned index drops each partition's.

The drop locks both event tables and every partition (ACCESS EXCLUSIVE) until the schema's
migration commits; it gives up after ``LOCK_TIMEOUT`` rather than queue the tenant's ingest and
pages behind a long transaction (an export, a rollup rebuild). ``migrate_schemas`` then fails for
that schema, and running it again finishes the job.
"""

import django.db.models.deletion
from django.db import migrations, models

LOCK_TIMEOUT = "SET LOCAL lock_timeout = '10s'"
# (table, column, Django's index name for the column); fixed names, never input.
INDEXES = (
    ("usage_llmusageevent", "job_id", "usage_llmusageevent_job_id_0d442d49"),
    ("usage_llmusageevent", "project_id", "usage_llmusageevent_project_id_cc3a107e"),
    ("usage_infrausageevent", "job_id", "usage_infrausageevent_job_id_61ec941b"),
    ("usage_infrausageevent", "project_id", "usage_infrausageevent_project_id_6348ecac"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0012_runledger_stripes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[LOCK_TIMEOUT, *(f'DROP INDEX IF EXISTS "{name}"' for *_, name in INDEXES)],
                    reverse_sql=[
                        LOCK_TIMEOUT,
                        *(
                            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")'
                            for table, column, name in INDEXES
                        ),
                    ],
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="infrausageevent",
                    name="job",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="infra_events",
                        to="usage.job",
                    ),
                ),
                migrations.AlterField(
                    model_name="infrausageevent",
                    name="project",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="infra_events",
                        to="usage.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="llmusageevent",
                    name="job",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="llm_events",
                        to="usage.job",
                    ),
                ),
                migrations.AlterField(
                    model_name="llmusageevent",
                    name="project",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="llm_events",
                        to="usage.project",
                    ),
                ),
            ],
        ),
    ]
