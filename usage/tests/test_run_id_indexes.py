"""Run ids are looked up by equality in every ingest batch and searched by substring on the run
history: the two go through different indexes (migration usage 0016). The trigram index of the
search answers equality too; on the plain column the planner took it for batches' lookups, which
then read the index's whole pending list (80 ms for 28 ids among 3,000 unvacuumed runs).

Sequential scans are off while planning, as they would lose on a tenant's large table: on the
tests' few rows they win every comparison and the plan would show no index at all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django_tenants.utils import schema_context

from factory_portal.pg import local_setting
from tests.support import runs_make
from usage import selectors
from usage.models import Run
from usage.services.references import projects_ensure, runs_ensure


def _index_names(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if "Index Name" in plan:
            yield plan["Index Name"]
        for value in plan.values():
            yield from _index_names(value)
    elif isinstance(plan, list):
        for item in plan:
            yield from _index_names(item)


def _indexes_read(sql: str, params: list[Any], *, seqscan: str = "on") -> set[str]:
    with connection.cursor() as cursor, local_setting(cursor, "enable_seqscan", seqscan):
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    return set(_index_names(plan))


def test_a_batch_looks_its_runs_up_in_the_unique_index(alpha):
    with schema_context(alpha.schema):
        # Enough runs for the planner to prefer an index over reading the table: 3,000 stubs.
        (project,) = projects_ensure(["web"]).values()
        at = datetime(2026, 11, 2, tzinfo=UTC)
        runs_ensure({f"o{n:05d}-{n % 28}": (project, at) for n in range(3000)}, zone=UTC)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE usage_run")  # as autovacuum would have
        ids = [f"o{n:05d}-{n % 28}" for n in range(2000, 2028)]
        # As usage.services.references.runs_ensure and the lifecycle's locked read ask.
        raw = _indexes_read("SELECT id FROM usage_run WHERE run_id = ANY(%s)", [ids])
        orm = _indexes_read(*Run.objects.filter(run_id__in=ids).query.sql_with_params())
        # ANALYZE's row count outlives the rollback (pg_class is written in place): analyse the
        # emptied table, so later tests of this worker do not plan for 3,000 runs.
        Run.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE usage_run")
    # One of the column's btrees: the unique key, or Django's ``_like`` index (which answers
    # equality too); never a trigram index.
    for read in (raw, orm):
        assert len(read) == 1
        assert read.pop().startswith("usage_run_run_id_")


def test_the_search_reads_the_trigram_index_of_upper_cased_ids(alpha):
    with schema_context(alpha.schema):
        runs_make(alpha, 5, prefix="AbC-run")
        query = selectors._filtered_runs(selectors.RunFilters(search="bC-run-00"))
        sql, params = query.query.sql_with_params()
        assert _indexes_read(sql, params, seqscan="off") == {"run_id_upper_trgm_idx"}
        assert sorted(query.values_list("run_id", flat=True)) == [
            f"AbC-run-{n:03d}" for n in range(5)
        ]
        # Still case-sensitive: the index finds candidates, the id must hold the text as typed.
        assert not selectors._filtered_runs(selectors.RunFilters(search="bc-run-00")).exists()


def test_no_index_of_the_plain_run_id_is_a_trigram_index(alpha):
    with schema_context(alpha.schema), connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s"
            " AND tablename = 'usage_run' AND indexdef LIKE '%%run_id%%'",
            [alpha.schema],
        )
        indexes = dict(cursor.fetchall())
    trigram = {name for name, definition in indexes.items() if "gin_trgm_ops" in definition}
    assert trigram == {"run_id_upper_trgm_idx"}
    assert "upper((run_id)::text)" in indexes["run_id_upper_trgm_idx"]
    # One btree for prefix search (Django's own ``_like`` index of the unique column).
    assert len([d for d in indexes.values() if "varchar_pattern_ops" in d]) == 1
