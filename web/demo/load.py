"""Writes a generated History into the current tenant schema with COPY, pricing LLM calls from the
price book on the way (Django's bulk_create would be ~20x slower for ~100k rows a tenant)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from billing.pricing.domain import PriceSchedule, TokenCounts, priced
from usage.services.ingest import INFRA_COLUMNS, LLM_COLUMNS
from usage.services.rollups import rollups_rebuild
from web.demo.generate import History

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "usage_project": ("id", "slug", "name", "created_at"),
    "usage_run": (
        "id",
        "run_id",
        "project_id",
        "template_recipe_id",
        "run_type",
        "status",
        "requested_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "failure_type",
        "trace_id",
        "updated_at",
    ),
    "usage_job": (
        "id",
        "run_id",
        "job_id",
        "step_name",
        "attempt",
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "failure_type",
        "updated_at",
    ),
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
        # Table names come from TABLE_COLUMNS above, never from input.
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(MAX(id), 1))"  # noqa: S608
            f" FROM {table}"
        )


def history_load(history: History, prices: PriceSchedule) -> LoadResult:
    """Insert ``history`` into the current (empty) tenant schema in one transaction."""
    job_refs = {j.id: j.job_id for j in history.jobs}
    run_kinds = {r.id: (r.run_type, r.template_recipe_id) for r in history.runs}
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
                e.event_id,
                e.occurred_at,
                e.project_id,
                e.run_id,
                e.job_id,
                job_refs.get(e.job_id, ""),
                e.provider,
                e.model,
                e.operation,
                e.input_tokens,
                e.output_tokens,
                e.cached_input_tokens,
                e.cache_write_tokens,
                cost,
                source,
                ref,
                None,  # no contract override in the demo
                *run_kinds.get(e.run_id, ("", "")),
                e.occurred_at,
            )
        )
    with transaction.atomic():
        _copy("usage_project", [(p.id, p.slug, p.name, p.created_at) for p in history.projects])
        _copy(
            "usage_run",
            [
                (
                    r.id,
                    r.run_id,
                    r.project_id,
                    r.template_recipe_id,
                    r.run_type,
                    r.status,
                    r.requested_at,
                    r.started_at,
                    r.finished_at,
                    r.duration_ms,
                    r.failure_type,
                    r.trace_id,
                    r.updated_at,
                )
                for r in history.runs
            ],
        )
        _copy(
            "usage_job",
            [
                (
                    j.id,
                    j.run_id,
                    j.job_id,
                    j.step_name,
                    j.attempt,
                    j.status,
                    j.started_at,
                    j.finished_at,
                    j.duration_ms,
                    j.failure_type,
                    j.finished_at or j.started_at,
                )
                for j in history.jobs
            ],
        )
        _copy("usage_llmusageevent", llm_rows, serial=False)
        _copy(
            "usage_infrausageevent",
            [
                (
                    i.event_id,
                    i.occurred_at,
                    i.project_id,
                    i.run_id,
                    i.job_id,
                    job_refs.get(i.job_id, ""),
                    i.resource_type,
                    i.quantity,
                    i.unit,
                    *run_kinds.get(i.run_id, ("", "")),
                    i.occurred_at,
                )
                for i in history.infra
            ],
            serial=False,
        )
        rollups_rebuild()
    return LoadResult(
        runs=len(history.runs),
        jobs=len(history.jobs),
        llm_events=len(history.llm),
        infra_events=len(history.infra),
        unpriced_events=unpriced,
        cost=total,
    )
