"""Every ingest batch reads the jobs and runs it names by their keys, whatever the planner believes
about the tables' size. A young tenant's tables grow faster than autovacuum analyses them: the
planner, sure they are small, hashed the whole job and run tables for each batch (the jobs lookup
and the step rollup's join: 4 ms a 1,000-span request at 9,000 jobs, growing with every batch
until the next analysis). Lateral subqueries with a LIMIT are never flattened into such a join.

The tables here are analysed while small, then grown without analysing, as between two of
autovacuum's passes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from usage.services.ingest import LLM_STEPS, LLM_TEMP
from usage.services.references import JOBS_LOOKUP, projects_ensure, runs_ensure

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)
JOBS_PER_RUN = 3


def _scans(plan: Any) -> Iterator[tuple[str, str]]:
    """(node type, relation) of every node of an EXPLAIN (FORMAT JSON) plan that reads one."""
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            yield plan["Node Type"], plan["Relation Name"]
        for value in plan.values():
            yield from _scans(value)
    elif isinstance(plan, list):
        for item in plan:
            yield from _scans(item)


# How a plan reads rows by key (which one the planner takes depends on statistics other tests
# leave behind); anything else, a "Seq Scan" above all, reads the whole table.
KEYED = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def _by_key(scans: set[tuple[str, str]]) -> bool:
    return all(node in KEYED for node, _ in scans)


def _plan(sql: str, params: Any) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    return set(_scans(plan))


def _jobs_insert(run_ids: list[int]) -> None:
    pairs = [(run, f"job-{n}") for run in run_ids for n in range(JOBS_PER_RUN)]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO usage_job (run_id, job_id, attempt, step_name, status, failure_type)"
            " SELECT r, j, 1, 'build', 'Succeeded', ''"
            " FROM unnest(%s::bigint[], %s::text[]) AS x(r, j)",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )


@pytest.fixture
def grown(alpha):
    """3,000 runs of 3 jobs each, in a schema whose statistics saw 100 runs and 300 jobs."""
    with schema_context(alpha.schema):
        (project,) = projects_ensure(["web"]).values()
        names = [f"r{n:04d}" for n in range(3000)]
        first = runs_ensure({name: (project, AT) for name in names[:100]}, zone=UTC)
        _jobs_insert(sorted(ref.id for ref in first.values()))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE usage_run")
            cursor.execute("ANALYZE usage_job")
        # What the statistics saw; then the growth they did not.
        rest = runs_ensure({name: (project, AT) for name in names[100:]}, zone=UTC)
        _jobs_insert(sorted(ref.id for ref in rest.values()))
        ids = sorted(ref.id for ref in (first | rest).values())
        yield ids
        # ANALYZE's counts outlive the test's rollback (pg_class is written in place): analyse
        # the emptied tables, so later tests of this worker are not planned for these thousands
        # of rows (the statistics then say "empty", not "never analysed" as in a new schema).
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM usage_job")
            cursor.execute("DELETE FROM usage_run")
            cursor.execute("ANALYZE usage_run")
            cursor.execute("ANALYZE usage_job")


def test_the_jobs_lookup_descends_the_job_key(alpha, grown):
    runs = grown[-28:]
    pairs = [(run, f"job-{n}") for run in runs for n in range(JOBS_PER_RUN)]
    with schema_context(alpha.schema):
        scans = _plan(JOBS_LOOKUP, [[p[0] for p in pairs], [p[1] for p in pairs]])
    assert {table for _, table in scans} == {"usage_job"}
    assert _by_key(scans)


def test_the_step_rollup_reads_each_job_and_run_by_its_key(alpha, grown):
    runs = grown[-28:]
    with schema_context(alpha.schema), connection.cursor() as cursor:
        # The connection's own table when an earlier test's ingest made it (ingest keeps it).
        cursor.execute(LLM_TEMP.replace("TEMP TABLE", "TEMP TABLE IF NOT EXISTS", 1))
        cursor.execute(
            "INSERT INTO ingest_llm (event_id, occurred_at, run_id, job_id, cost)"
            " SELECT 'e' || j.id || '-' || n, %s, j.run_id, j.id, 0.01"
            " FROM usage_job j CROSS JOIN generate_series(1, 8) AS n WHERE j.run_id = ANY(%s)",
            [AT, runs],
        )
        scans = _plan(LLM_STEPS, {"zone": "UTC", "stripe": 0})
        cursor.execute("DELETE FROM ingest_llm")
    reads = {(node, table) for node, table in scans if table in ("usage_job", "usage_run")}
    assert {table for _, table in reads} == {"usage_job", "usage_run"}
    assert _by_key(reads)
