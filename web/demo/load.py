"""Writes a generated History into the current tenant schema with COPY, pricing LLM calls from the
price book on the way (Django's bulk_create would be ~20x slower for ~100k rows a tenant)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.db import connection, transaction

from billing.pricing.domain import PriceSchedule, TokenCounts, priced
from factory_portal.tenants.connection import connection_zone
from usage.domain.retention import utc_month
from usage.services.ingest import INFRA_COLUMNS, LLM_COLUMNS, infra_values, llm_call_values
from usage.services.partitions import partitions_ensure_months
from usage.services.rollups import rollups_rebuild
from web.demo.generate import History, InfraRow, JobRow, LlmRow, ProjectRow, RunRow


def _fields(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(row_type))


# The generated rows are shaped like the tables (a job's ``updated_at`` is derived).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "usage_project": _fields(ProjectRow),
    "usage_run": _fields(RunRow),
    "usage_job": (*_fields(JobRow), "updated_at"),
    # The event tables take the ingest path's columns (their key is the event id).
    "usage_llmusageevent": (*LLM_COLUMNS, "received_at"),
    "usage_infrausageevent": (*INFRA_COLUMNS, "received_at"),
}


@dataclass(frozen=True)
class LoadResult:
    runs: int
    jobs: int
    llm_events: int
    infra_events: int
    unpriced_events: int
    cost: Decimal


def _copy(table: str, rows: list[tuple], *, serial: bool = True) -> None:
    columns = TABLE_COLUMNS[table]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if not serial:
            return
        # Table names come from TABLE_COLUMNS above, never from input. Two statements: Citus
        # refuses setval() inside a query over a distributed table (the sequence is not there).
        cursor.execute(f"SELECT GREATEST(MAX(id), 1) FROM {table}")  # noqa: S608
        (last_id,) = cursor.fetchone()
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, last_id])


def schema_analyze() -> int:
    """ANALYZE every table of the current schema (a partitioned table with its partitions);
    returns how many were named. Rows loaded by COPY have no planner statistics until
    autovacuum gets to them, and until then the pages' queries on a fresh demo plan as if the
    tables were empty: measured on the demo tenant under mixed load, 154 ms of PostgreSQL CPU a
    request before, 12 ms after."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            " AND NOT c.relispartition ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall()]
        if tables:
            # Quoted by format('%I') above: names from the catalog, never from input.
            cursor.execute(f"ANALYZE {', '.join(tables)}")
    return len(tables)


def _copy_rows(table: str, items: list[Any]) -> None:
    """COPY generated rows whose attributes are named like the table's columns."""
    _copy(table, list(map(attrgetter(*TABLE_COLUMNS[table]), items)))


def history_load(history: History, prices: PriceSchedule) -> LoadResult:
    """Insert ``history`` into the current (empty) tenant schema in one transaction."""
    job_refs = {j.id: j.job_id for j in history.jobs}
    run_kinds = {r.id: (r.run_type, r.template_recipe_id) for r in history.runs}

    def references(e: LlmRow | InfraRow) -> tuple[Any, ...]:
        return (
            e.event_id,
            e.occurred_at,
            e.project_id,
            e.run_id,
            e.job_id,
            job_refs.get(e.job_id, ""),
        )

    llm_rows = []
    total = Decimal(0)
    unpriced = 0
    for e in history.llm:
        tokens = TokenCounts(
            e.input_tokens, e.output_tokens, e.cached_input_tokens, e.cache_write_tokens
        )
        found = priced(prices, e.provider, e.model, e.occurred_at, tokens)
        if found is None:
            cost, source, ref = None, "unpriced", None
            unpriced += 1
        else:
            (cost, ref), source = found, "price_book"
            total += cost
        llm_rows.append(
            (
                *references(e),
                *llm_call_values(e),
                cost,
                source,
                ref,
                None,  # no contract override in the demo
                *run_kinds.get(e.run_id, ("", "")),
                e.occurred_at,
            )
        )
    with transaction.atomic():
        _copy_rows("usage_project", history.projects)
        _copy_rows("usage_run", history.runs)
        _copy_rows("usage_job", history.jobs)
        # Each month's rows go straight to its partition, none through DEFAULT.
        partitions_ensure_months({utc_month(e.occurred_at) for e in (*history.llm, *history.infra)})
        _copy("usage_llmusageevent", llm_rows, serial=False)
        _copy(
            "usage_infrausageevent",
            [
                (
                    *references(i),
                    *infra_values(i),
                    *run_kinds.get(i.run_id, ("", "")),
                    i.occurred_at,
                )
                for i in history.infra
            ],
            serial=False,
        )
        rollups_rebuild(zone=connection_zone())
    return LoadResult(
        runs=len(history.runs),
        jobs=len(history.jobs),
        llm_events=len(history.llm),
        infra_events=len(history.infra),
        unpriced_events=unpriced,
        cost=total,
    )
