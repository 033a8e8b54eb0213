"""Storing usage events in the current tenant schema: idempotent, atomic, fast.

One transaction per batch: projects and runs referenced for the first time are created, LLM calls
are priced, rows are COPYed into a temporary table and inserted with ``ON CONFLICT (event_id) DO
NOTHING``; the rows actually inserted feed the hourly and daily rollups in the same statement, so a
re-sent event changes nothing and a client reads its own writes. Rows are inserted in event id
order so that concurrent batches with the same events wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from usage.domain.events import EventIn, LlmEventIn
from usage.models import CostSource
from usage.pricing import Pricer
from usage.services.references import jobs_lookup, projects_ensure, runs_ensure


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


LLM_COLUMNS = (
    "event_id",
    "occurred_at",
    "project_id",
    "run_id",
    "job_id",
    "job_ref",
    "provider",
    "model",
    "operation",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cost",
    "cost_source",
    "price_ref",
    "override_ref",
)
LLM_TEMP = """
CREATE TEMP TABLE ingest_llm (
    event_id varchar(128), occurred_at timestamptz, project_id bigint, run_id bigint,
    job_id bigint, job_ref varchar(128), provider varchar(64), model varchar(128),
    operation varchar(32), input_tokens bigint, output_tokens bigint,
    cached_input_tokens bigint, cache_write_tokens bigint, cost numeric(20, 10),
    cost_source varchar(16), price_ref bigint, override_ref bigint
)
"""
LLM_MEASURES = """
    count(*), count(*) FILTER (WHERE cost_source = 'unpriced'), sum(input_tokens),
    sum(output_tokens), sum(cached_input_tokens), sum(cache_write_tokens), coalesce(sum(cost), 0)
"""
LLM_UPDATE = ", ".join(
    f"{m} = {{table}}.{m} + EXCLUDED.{m}"
    for m in (
        "calls",
        "unpriced_calls",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "cost",
    )
)
LLM_ROLLUP_COLUMNS = (
    "project_id, provider, model, operation, run_type, template, calls, unpriced_calls,"
    " input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, cost"
)
# Built only from the constant column lists above, never from input.
LLM_INSERT = f"""
WITH inserted AS (
    INSERT INTO usage_llmusageevent ({", ".join(LLM_COLUMNS)}, received_at)
    SELECT {", ".join(LLM_COLUMNS)}, now() FROM ingest_llm ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING occurred_at, project_id, run_id, provider, model, operation, input_tokens,
              output_tokens, cached_input_tokens, cache_write_tokens, cost, cost_source
), rows AS (
    SELECT i.*, coalesce(r.run_type, '') AS run_type, coalesce(r.template_recipe_id, '') AS template
    FROM inserted i LEFT JOIN usage_run r ON r.id = i.run_id
), hourly AS (
    INSERT INTO usage_llmusagehourly (hour, {LLM_ROLLUP_COLUMNS})
    SELECT date_trunc('hour', occurred_at, 'UTC'), project_id, provider, model, operation,
           run_type, template, {LLM_MEASURES}
    FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (hour, project_id, provider, model, operation, run_type, template)
    DO UPDATE SET {LLM_UPDATE.format(table="usage_llmusagehourly")}
), daily AS (
    INSERT INTO usage_llmusagedaily (day, {LLM_ROLLUP_COLUMNS})
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, project_id, provider, model, operation,
           run_type, template, {LLM_MEASURES}
    FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (day, project_id, provider, model, operation, run_type, template)
    DO UPDATE SET {LLM_UPDATE.format(table="usage_llmusagedaily")}
)
SELECT count(*) FROM inserted
"""  # noqa: S608

INFRA_COLUMNS = (
    "event_id",
    "occurred_at",
    "project_id",
    "run_id",
    "job_id",
    "job_ref",
    "resource_type",
    "quantity",
    "unit",
)
INFRA_TEMP = """
CREATE TEMP TABLE ingest_infra (
    event_id varchar(128), occurred_at timestamptz, project_id bigint, run_id bigint,
    job_id bigint, job_ref varchar(128), resource_type varchar(16), quantity numeric(24, 6),
    unit varchar(32)
)
"""
INFRA_UPDATE = (
    "events = {table}.events + EXCLUDED.events, quantity = {table}.quantity + EXCLUDED.quantity"
)
INFRA_INSERT = f"""
WITH inserted AS (
    INSERT INTO usage_infrausageevent ({", ".join(INFRA_COLUMNS)}, received_at)
    SELECT {", ".join(INFRA_COLUMNS)}, now() FROM ingest_infra ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING occurred_at, project_id, run_id, resource_type, unit, quantity
), rows AS (
    SELECT i.*, coalesce(r.run_type, '') AS run_type, coalesce(r.template_recipe_id, '') AS template
    FROM inserted i LEFT JOIN usage_run r ON r.id = i.run_id
), hourly AS (
    INSERT INTO usage_infrausagehourly (hour, project_id, resource_type, unit, run_type, template,
                                        events, quantity)
    SELECT date_trunc('hour', occurred_at, 'UTC'), project_id, resource_type, unit, run_type,
           template, count(*), sum(quantity)
    FROM rows GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (hour, project_id, resource_type, unit, run_type, template)
    DO UPDATE SET {INFRA_UPDATE.format(table="usage_infrausagehourly")}
), daily AS (
    INSERT INTO usage_infrausagedaily (day, project_id, resource_type, unit, run_type, template,
                                       events, quantity)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, project_id, resource_type, unit, run_type,
           template, count(*), sum(quantity)
    FROM rows GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, project_id, resource_type, unit, run_type, template)
    DO UPDATE SET {INFRA_UPDATE.format(table="usage_infrausagedaily")}
)
SELECT count(*) FROM inserted
"""  # noqa: S608


def _copy_insert(
    temp_ddl: str, table: str, columns: Sequence[str], rows: list[tuple], insert_sql: str
) -> int:
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(temp_ddl)
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(insert_sql)
        inserted = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {table}")  # a platform batch reuses it for the next tenant
        return inserted


def events_ingest(*, events: Sequence[EventIn], pricer: Pricer) -> IngestResult:
    """Store validated events in the current tenant schema, all or nothing."""
    if not events:
        return IngestResult(0, 0)
    with transaction.atomic():
        projects = projects_ensure(e.project for e in events)
        first_seen: dict[str, tuple[int, datetime]] = {}
        for e in events:
            if e.run_id and (e.run_id not in first_seen or e.occurred_at < first_seen[e.run_id][1]):
                first_seen[e.run_id] = (projects[e.project], e.occurred_at)
        runs = runs_ensure(first_seen)
        jobs = jobs_lookup((runs[e.run_id].id, e.job_id) for e in events if e.run_id and e.job_id)

        llm_rows: list[tuple] = []
        infra_rows: list[tuple] = []
        for e in events:
            run_pk = runs[e.run_id].id if e.run_id else None
            job_pk = jobs.get((run_pk, e.job_id)) if run_pk and e.job_id else None
            if isinstance(e, LlmEventIn):
                llm_rows.append(_llm_row(e, projects[e.project], run_pk, job_pk, pricer))
            else:
                infra_rows.append(
                    (
                        e.event_id,
                        e.occurred_at,
                        projects[e.project],
                        run_pk,
                        job_pk,
                        e.job_id,
                        e.resource_type,
                        e.quantity,
                        e.unit,
                    )
                )
        accepted = _copy_insert(LLM_TEMP, "ingest_llm", LLM_COLUMNS, llm_rows, LLM_INSERT)
        accepted += _copy_insert(
            INFRA_TEMP, "ingest_infra", INFRA_COLUMNS, infra_rows, INFRA_INSERT
        )
    return IngestResult(accepted=accepted, duplicates=len(events) - accepted)


def _llm_row(
    e: LlmEventIn, project_pk: int, run_pk: int | None, job_pk: int | None, pricer: Pricer
) -> tuple:
    if e.cost is not None:
        cost, source, price_ref, override_ref = e.cost, CostSource.CLIENT, None, None
    else:
        priced = pricer.price(
            provider=e.provider,
            model=e.model,
            at=e.occurred_at,
            input_tokens=e.input_tokens,
            output_tokens=e.output_tokens,
            cached_input_tokens=e.cached_input_tokens,
            cache_write_tokens=e.cache_write_tokens,
        )
        if priced is None:
            cost, source, price_ref, override_ref = None, CostSource.UNPRICED, None, None
        else:
            cost, source = priced.cost, CostSource.PRICE_BOOK
            price_ref, override_ref = priced.price_ref, priced.override_ref
    return (
        e.event_id,
        e.occurred_at,
        project_pk,
        run_pk,
        job_pk,
        e.job_id,
        e.provider,
        e.model,
        e.operation,
        e.input_tokens,
        e.output_tokens,
        e.cached_input_tokens,
        e.cache_write_tokens,
        cost,
        str(source),
        price_ref,
        override_ref,
    )
