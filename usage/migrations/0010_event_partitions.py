"""Raw event tables partitioned by UTC calendar month of ``occurred_at``, plus a DEFAULT partition.

Each table is renamed, a partitioned table like it is created with the primary key
``(event_id, occurred_at)`` (the partition key must be in every unique constraint), a partition is
created for every month that has rows (and this month and the next), the rows are copied and the
old table dropped. The cost corrections' foreign key to the LLM calls loses its database
constraint (a partitioned table has no unique ``event_id`` to point at). Indexes the partitioned
tables do not need are not re-created: the ``varchar_pattern_ops`` copy of ``event_id`` (ids are
never searched by prefix) and the run's second index (the models' ``*_run_idx`` is the one).

Reversible while event ids are unique across months (the old primary key is ``event_id``).
"""

import django.db.models.deletion

# The raw SQL below is built from the fixed names above, never from input.
from django.db import migrations, models

TABLES = {  # table -> its model's run index (kept), Django's FK index columns (kept)
    "usage_llmusageevent": ("llm_run_idx", ("job_id", "project_id")),
    "usage_infrausageevent": ("infra_run_idx", ("job_id", "project_id")),
}


def _month_sql(month) -> tuple[str, str]:
    """The first day of a month -> its UTC bounds as SQL literals."""
    end = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    return f"'{month:%Y-%m-%d} 00:00:00+00'", f"'{end:%Y-%m-%d} 00:00:00+00'"


def _indexes(cursor, table):
    cursor.execute(
        "SELECT i.relname, con.conname FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid"
        " WHERE x.indrelid = %s::regclass",
        [table],
    )
    return cursor.fetchall()


def _set_aside(schema_editor, table: str, old: str) -> None:
    """Rename ``table`` to ``old`` and free its index and key names for the new table."""
    qn = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        schema_editor.execute(f"ALTER TABLE {qn(table)} RENAME TO {qn(old)}")
        for index, constraint in _indexes(cursor, old):
            if constraint:
                key = qn(old + "_pkey")
                schema_editor.execute(
                    f"ALTER TABLE {qn(old)} RENAME CONSTRAINT {qn(constraint)} TO {key}"
                )
            else:
                schema_editor.execute(f"DROP INDEX {qn(index)}")


def _fk_index(schema_editor, table: str, column: str, suffix: str = "") -> str:
    return schema_editor._create_index_name(table, [column], suffix=suffix)


def partition(apps, schema_editor) -> None:
    qn = schema_editor.quote_name
    for table, (run_index, fk_columns) in TABLES.items():
        old = f"{table}_unpartitioned"
        _set_aside(schema_editor, table, old)
        schema_editor.execute(
            f"CREATE TABLE {qn(table)} (LIKE {qn(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " PARTITION BY RANGE (occurred_at)"
        )
        schema_editor.execute(
            f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(table + '_pkey')}"
            " PRIMARY KEY (event_id, occurred_at)"
        )
        schema_editor.execute(f"CREATE INDEX {qn(run_index)} ON {qn(table)} (run_id)")
        for column in fk_columns:
            name = _fk_index(schema_editor, table, column)
            schema_editor.execute(f"CREATE INDEX {qn(name)} ON {qn(table)} ({qn(column)})")
        schema_editor.execute(
            f"CREATE TABLE {qn(table + '_default')} PARTITION OF {qn(table)} DEFAULT"
        )
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT date_trunc('month', occurred_at, 'UTC')::date FROM {qn(old)}"  # noqa: S608
                " UNION SELECT date_trunc('month', now(), 'UTC')::date"
                " UNION SELECT (date_trunc('month', now(), 'UTC') + interval '1 month')::date"
            )
            months = sorted(row[0] for row in cursor.fetchall())
        for month in months:
            start, end = _month_sql(month)
            schema_editor.execute(
                f"CREATE TABLE {qn(f'{table}_p{month:%Y_%m}')} PARTITION OF {qn(table)}"
                f" FOR VALUES FROM ({start}) TO ({end})"
            )
        schema_editor.execute(f"INSERT INTO {qn(table)} SELECT * FROM {qn(old)}")  # noqa: S608
        schema_editor.execute(f"DROP TABLE {qn(old)}")
        schema_editor.execute(f"ANALYZE {qn(table)}")


def unpartition(apps, schema_editor) -> None:
    qn = schema_editor.quote_name
    for table, (run_index, fk_columns) in TABLES.items():
        old = f"{table}_partitioned"
        _set_aside(schema_editor, table, old)
        schema_editor.execute(
            f"CREATE TABLE {qn(table)} (LIKE {qn(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        schema_editor.execute(f"INSERT INTO {qn(table)} SELECT * FROM {qn(old)}")  # noqa: S608
        schema_editor.execute(
            f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(table + '_pkey')} PRIMARY KEY (event_id)"
        )
        like = _fk_index(schema_editor, table, "event_id", "_like")
        schema_editor.execute(
            f"CREATE INDEX {qn(like)} ON {qn(table)} (event_id varchar_pattern_ops)"
        )
        schema_editor.execute(f"CREATE INDEX {qn(run_index)} ON {qn(table)} (run_id)")
        for column in (*fk_columns, "run_id"):
            name = _fk_index(schema_editor, table, column)
            schema_editor.execute(f"CREATE INDEX {qn(name)} ON {qn(table)} ({qn(column)})")
        schema_editor.execute(f"DROP TABLE {qn(old)} CASCADE")


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0009_run_id_trigram_index"),
    ]

    operations = [
        # Before the swap: the constraint points at the old table's unique event_id.
        migrations.AlterField(
            model_name="llmcostcorrection",
            name="event",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="corrections",
                to="usage.llmusageevent",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(partition, unpartition)],
            state_operations=[
                migrations.AlterField(
                    model_name="llmusageevent",
                    name="run",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="llm_events",
                        to="usage.run",
                    ),
                ),
                migrations.AlterField(
                    model_name="infrausageevent",
                    name="run",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="infra_events",
                        to="usage.run",
                    ),
                ),
            ],
        ),
    ]
