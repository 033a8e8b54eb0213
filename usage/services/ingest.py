"""Storing usage events in the current tenant schema: idempotent, atomic, fast.

One transaction per batch: projects and runs referenced for the first time are created (the
batch's months get their partitions: the event tables are partitioned by month of
``occurred_at``), the event ids already stored in any month are looked up and left out, LLM calls
are priced, rows are COPYed into a temporary table and inserted, then the same rows feed the
hourly and daily rollups and the run ledger, so a re-sent event changes nothing and a client reads
its own writes.

The lookup comes after every step that can wait for a concurrent batch (a new project, run or
month it names too): once that batch has committed, its events are seen. The insert has no ``ON
CONFLICT`` clause (its speculative insertion cost PostgreSQL a fifth of the statement, for a race
that is rare) and runs on its own before the rollups: rows go in event id order, so concurrent
batches with the same events wait for each other at the first shared event, before holding any
rollup row, instead of deadlocking; the loser's insert then fails on the key ``(event_id,
occurred_at)`` and the batch runs again (``EventRace``), when the lookup sees the winner's rows
and counts them as duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from psycopg import errors as pg_errors
from psycopg import postgres

from factory_portal.errors import WriteRace
from factory_portal.observability import metrics
from factory_portal.observability.context import tenant_label
from factory_portal.pg import local_setting, prepared_cursor
from factory_portal.tenants.connection import zone_for_writing
from usage.domain.events import EventIn, LlmEventIn
from usage.domain.retention import utc_month
from usage.models import CostSource, InfraUsageEvent, LlmUsageEvent, UsageEvent
from usage.pricing import PricedCall, Pricer
from usage.services.partitions import partitions_ensure_months
from usage.services.references import RunRef, jobs_lookup, projects_ensure, runs_ensure
from usage.services.rollups import RunRollupDeltas, rollup_stripe
from usage.signals import usage_stored

logger = logging.getLogger(__name__)
TOKEN_KINDS = ("input", "output", "cached_input", "cache_write")


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


class EventRace(WriteRace):
    """A concurrent batch committed one of this batch's events first (same id and time)."""


# The tables (partitions: named after them) whose key a lost race violates.
EVENT_TABLES = (LlmUsageEvent._meta.db_table, InfraUsageEvent._meta.db_table)
# How often a batch runs again after losing such a race: each loser waited for the winner's
# commit, so the next attempt sees its rows; only a new overlapping batch each time can exhaust it.
RACE_ATTEMPTS = 5


# Every statement below is built from the event models' columns, never from input. Rows are
# written in one order for both kinds: the references, the kind's own columns (its model's, in
# field order), then the rollup dimensions; ``received_at`` is the database's ``now()``.
REFERENCE_COLUMNS = ("event_id", "occurred_at", "project_id", "run_id", "job_id", "job_ref")
ROLLUP_COLUMNS = ("run_type", "template")


def event_columns(model: type[UsageEvent]) -> tuple[str, ...]:
    """The columns of ``model`` that ingest (and the demo's bulk load) write, in row order."""
    shared = (*REFERENCE_COLUMNS, *ROLLUP_COLUMNS)
    columns = [f.column for f in model._meta.concrete_fields if f.column != "received_at"]
    missing = set(shared) - set(columns)
    if missing:
        raise ImproperlyConfigured(f"{model.__name__} has no column {', '.join(sorted(missing))}")
    own = tuple(c for c in columns if c not in shared)
    return (*REFERENCE_COLUMNS, *own, *ROLLUP_COLUMNS)


def _temp_table(temp: str, model: type[UsageEvent], columns: tuple[str, ...]) -> str:
    """DDL of the temporary table a batch is COPYed into: the event table's column types."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    definitions = ", ".join(
        f"{c} {fields[c].db_type(connection)}"
        + (
            f' COLLATE "{fields[c].db_collation}"'
            if getattr(fields[c], "db_collation", None)
            else ""
        )
        for c in columns
    )
    return f"CREATE TEMP TABLE {temp} ({definitions})"


def _copy_types(model: type[UsageEvent], columns: tuple[str, ...]) -> list[str]:
    """The binary COPY type of each column (``varchar(128)`` is sent as ``varchar``)."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    return [postgres.types[fields[c].db_type(connection).split("(")[0]].name for c in columns]


LLM_COLUMNS = event_columns(LlmUsageEvent)
LLM_TEMP = _temp_table("ingest_llm", LlmUsageEvent, LLM_COLUMNS)
LLM_TYPES = _copy_types(LlmUsageEvent, LLM_COLUMNS)
LLM_DIMENSIONS = "project_id, provider, model, operation, run_type, template"
LLM_MEASURES = {
    "calls": "count(*)",
    "unpriced_calls": "count(*) FILTER (WHERE cost_source = 'unpriced')",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
    "cached_input_tokens": "sum(cached_input_tokens)",
    "cache_write_tokens": "sum(cache_write_tokens)",
    "cost": "coalesce(sum(cost), 0)",
}


LLM_LEDGER = {  # the run ledger's LLM measures (usage_runledger columns)
    **LLM_MEASURES,
    "unpriced_tokens": "coalesce(sum(input_tokens + output_tokens)"
    " FILTER (WHERE cost_source = 'unpriced'), 0)",
}


def _rollup_sql(
    *,
    event_table: str,
    temp: str,
    columns: tuple[str, ...],
    dimensions: str,
    measures: dict[str, str],
    ledger: dict[str, str],
    rollup_prefix: str,
    summary_by: str,
) -> tuple[str, str]:
    """Two statements: the insert of the COPYed rows (the caller left out the ids already
    stored), then one that adds the same rows to the hourly rollup (UTC hours), the daily rollup
    (the tenant's local days, ``%(zone)s``) and the run ledger (``ledger``'s measures per run and
    local day) and answers their measures summed per ``summary_by`` (for metrics). Apart, so the
    insert runs first: inside one statement PostgreSQL runs the data-modifying ``WITH`` queries
    nothing reads last."""
    cols = ", ".join(columns)
    measure_sql = ", ".join(f"{expression} AS {name}" for name, expression in measures.items())
    ledger_sql = ", ".join(ledger.values())
    n_keys = dimensions.count(",") + 1
    keys = ", ".join(str(n) for n in range(1, n_keys + 2))  # the bucket and the dimensions
    group_keys = ", ".join(str(n) for n in range(1, n_keys + 3))  # hour, day, dimensions
    sums = ", ".join(f"sum({m})" for m in measures)
    update = ", ".join(f"{m} = {{table}}.{m} + EXCLUDED.{m}" for m in measures)
    ledger_update = ", ".join(f"{m} = usage_runledger.{m} + EXCLUDED.{m}" for m in ledger)
    hourly, daily = f"{rollup_prefix}hourly", f"{rollup_prefix}daily"
    latest = f"last_occurred_at = GREATEST({hourly}.last_occurred_at, EXCLUDED.last_occurred_at)"
    insert = f"""
INSERT INTO {event_table} ({cols}, received_at)
SELECT {cols}, now() FROM {temp} ORDER BY event_id
"""  # noqa: S608
    rollup = f"""
WITH new AS NOT MATERIALIZED (
    SELECT * FROM {temp}
), hours AS (
    SELECT date_trunc('hour', occurred_at, 'UTC') AS hour,
           (occurred_at AT TIME ZONE %(zone)s)::date AS day, {dimensions}, {measure_sql},
           max(occurred_at) AS last_occurred_at
    FROM new
    GROUP BY {group_keys}
), hourly AS (
    INSERT INTO {hourly} (hour, {dimensions}, {", ".join(measures)}, last_occurred_at)
    SELECT hour, {dimensions}, {sums}, max(last_occurred_at)
    FROM hours GROUP BY {keys} ORDER BY {keys}
    ON CONFLICT (hour, {dimensions}) DO UPDATE SET {update.format(table=hourly)}, {latest}
), daily AS (
    INSERT INTO {daily} (day, {dimensions}, {", ".join(measures)})
    SELECT day, {dimensions}, {sums}
    FROM hours GROUP BY {keys} ORDER BY {keys}
    ON CONFLICT (day, {dimensions}) DO UPDATE SET {update.format(table=daily)}
), ledger AS (
    INSERT INTO usage_runledger (run_id, day, stripe, {", ".join(ledger)})
    SELECT run_id, (occurred_at AT TIME ZONE %(zone)s)::date, %(stripe)s, {ledger_sql}
    FROM new WHERE run_id IS NOT NULL
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (run_id, day, stripe) DO UPDATE SET {ledger_update}
)
SELECT {summary_by}, {sums} FROM hours GROUP BY {summary_by} ORDER BY {summary_by}
"""  # noqa: S608
    return insert, rollup


LLM_INSERT, LLM_ROLLUP = _rollup_sql(
    event_table="usage_llmusageevent",
    temp="ingest_llm",
    columns=LLM_COLUMNS,
    dimensions=LLM_DIMENSIONS,
    measures=LLM_MEASURES,
    ledger=LLM_LEDGER,
    rollup_prefix="usage_llmusage",
    summary_by="model",
)
# Calls whose job is known count in the step rollup under the run's day and template and the
# job's step, in the batch's stripe (usage.services.rollups.rollup_stripe); a call that arrives
# before its job is counted when the job arrives (usage.services.runs). A statement of its own,
# after the ledger's: every ingest path takes the run ledger's rows before StepDaily's, and
# inside the rollup statement PostgreSQL ran it before the ledger's insert. The calls are summed
# per job first, then each job and run is read by its key (lateral subqueries with a LIMIT are
# never flattened): joined whole, the planner hashed the entire job and run tables while their
# statistics lagged their growth (2.5 ms a batch at 9,000 jobs, and growing).
LLM_STEPS = """
INSERT INTO usage_stepdaily (day, template, step_name, stripe, calls, cost)
SELECT (r.requested_at AT TIME ZONE %(zone)s)::date, r.template_recipe_id, j.step_name,
       %(stripe)s, sum(n.calls)::bigint, coalesce(sum(n.cost), 0)
FROM (
    SELECT run_id, job_id, count(*) AS calls, sum(cost) AS cost FROM ingest_llm
    WHERE job_id IS NOT NULL AND run_id IS NOT NULL GROUP BY 1, 2
) n
CROSS JOIN LATERAL (SELECT step_name FROM usage_job WHERE id = n.job_id LIMIT 1) j
CROSS JOIN LATERAL (
    SELECT requested_at, template_recipe_id FROM usage_run WHERE id = n.run_id LIMIT 1
) r
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (day, template, step_name, stripe) DO UPDATE
SET calls = usage_stepdaily.calls + EXCLUDED.calls,
    cost = usage_stepdaily.cost + EXCLUDED.cost
"""

INFRA_COLUMNS = event_columns(InfraUsageEvent)
INFRA_TEMP = _temp_table("ingest_infra", InfraUsageEvent, INFRA_COLUMNS)
INFRA_TYPES = _copy_types(InfraUsageEvent, INFRA_COLUMNS)
INFRA_INSERT, INFRA_ROLLUP = _rollup_sql(
    event_table="usage_infrausageevent",
    temp="ingest_infra",
    columns=INFRA_COLUMNS,
    dimensions="project_id, resource_type, unit, run_type, template",
    measures={"events": "count(*)", "quantity": "sum(quantity)"},
    ledger={
        "infra_events": "count(*)",
        "cpu_seconds": "coalesce(sum(quantity) FILTER (WHERE unit = 'cpu_seconds'), 0)",
        "gb_hours": "coalesce(sum(quantity) FILTER (WHERE unit = 'gb_hours'), 0)",
    },
    rollup_prefix="usage_infrausage",
    summary_by="resource_type",
)


# A row's own columns, read off an event by name: an LLM call's as sent, then what pricing decided
# (written by ``_llm_values``); the demo's bulk load builds its rows with the same getters.
LLM_COST_COLUMNS = ("cost", "cost_source", "price_ref", "override_ref")
_LLM_OWN = LLM_COLUMNS[len(REFERENCE_COLUMNS) : -len(ROLLUP_COLUMNS)]
if _LLM_OWN[-len(LLM_COST_COLUMNS) :] != LLM_COST_COLUMNS:
    raise ImproperlyConfigured(f"LlmUsageEvent's last own columns must be {LLM_COST_COLUMNS}")
llm_call_values = attrgetter(*_LLM_OWN[: -len(LLM_COST_COLUMNS)])
infra_values = attrgetter(*INFRA_COLUMNS[len(REFERENCE_COLUMNS) : -len(ROLLUP_COLUMNS)])


def _copy_insert(
    temp_ddl: str,
    table: str,
    types: list[str],
    rows: list[tuple],
    insert_sql: str,
    params: dict[str, object] | None = None,
    *,
    first: str = "",
    last: str = "",
) -> list[tuple]:
    """COPY ``rows`` in and insert the new ones with the statement's ``params`` (the time zone
    days are counted in, the rollup stripe), after ``first`` if given (a statement without
    parameters) and before ``last`` (with the same parameters); answers the statement's summary
    rows. The temporary table (``temp_ddl``, a
    ``CREATE TEMP TABLE``) is made once per database session and emptied at every commit:
    creating and dropping it for each batch cost PostgreSQL more than the COPY, and left dead
    rows in the system catalogs."""
    if not rows:
        return []
    if not temp_ddl.startswith("CREATE TEMP TABLE "):
        raise ValueError(f"not a CREATE TEMP TABLE statement: {temp_ddl[:40]!r}")
    session_ddl = temp_ddl.replace("CREATE TEMP TABLE ", "CREATE TEMP TABLE IF NOT EXISTS ", 1)
    with (
        transaction.atomic(savepoint=False),
        connection.cursor() as cursor,
        prepared_cursor() as prepared,
    ):
        cursor.execute(session_ddl + " ON COMMIT DELETE ROWS")
        # Binary COPY: no text formatting of numbers and times on either side.
        with cursor.cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        if first:
            prepared.execute(first)
        prepared.execute(insert_sql, params)
        summary = prepared.fetchall()
        if last:
            prepared.execute(last, params)
        # Emptied for the next tenant of a platform batch (S608: the callers' fixed names).
        prepared.execute(f"DELETE FROM {table}")  # noqa: S608
        return summary


def events_ingest(
    *, events: Sequence[EventIn], pricer: Pricer, await_jobs: bool = True
) -> IngestResult:
    """Store validated events in the current tenant schema, all or nothing; ids already stored
    count as duplicates. Runs again (in a savepoint when the caller holds a transaction) after
    losing a race with a concurrent batch carrying the same events. ``await_jobs``: lock the
    runs of calls whose job is not stored yet (``_jobs_awaited``); a caller that has locked
    runs already in its transaction passes False, as taking more after them could deadlock."""
    if not events:
        return IngestResult(0, 0)
    unique: dict[str, EventIn] = {}
    for e in events:  # a repeated id within the batch is a duplicate like any other
        unique.setdefault(e.event_id, e)
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                accepted = _store(list(unique.values()), pricer, await_jobs)
            return IngestResult(accepted=accepted, duplicates=len(events) - accepted)
        except EventRace as race:
            if attempt == RACE_ATTEMPTS:
                raise
            logger.info("a concurrent batch stored the same events first (%s); again", race)
    raise AssertionError("unreachable")


# The ids travel as one string that PostgreSQL splits: as an array written into the statement,
# 5,000 ids took 4 ms of Python to format. The statement is prepared (``prepared_cursor``): from
# its sixth execution PostgreSQL may keep a generic plan, for any number of ids, which is still
# an index scan of each partition (sequential scans are off for it). The separator is the unit
# separator, a control character, which no id that passed ``usage.domain.ids`` holds.
_ID_SEPARATOR = "\x1f"
_STORED_IDS = "SELECT event_id FROM {table} WHERE event_id = ANY({ids})"
_JOINED_IDS = "string_to_array(%s, chr(31))"


def stored_ids(asked: Mapping[type[UsageEvent], list[str]]) -> set[str]:
    """The ids among each model's ``asked`` ids that its table already holds, in any month: one
    statement for every table (a round trip, not one per table), one index scan of each
    partition for a table's whole list (about 2 µs an id and partition). Sequential scans are
    off for this one statement: while a month's partition grows faster than autovacuum analyses
    it, the planner otherwise read the whole partition for every batch."""
    selects: list[str] = []
    params: list[object] = []
    for model, ids in asked.items():
        if not ids:
            continue
        # In the key's order (the column's "C" collation is code point order, as Python's):
        # each partition's index scan sorts the list again, and a sorted list is checked in one
        # pass. 5,000 ids in four partitions: 9 ms of PostgreSQL instead of 14, for 0.7 ms of
        # sorting here.
        ids = sorted(ids)
        joined = _ID_SEPARATOR.join(ids)
        if joined.count(_ID_SEPARATOR) == len(ids) - 1:
            selects.append(_STORED_IDS.format(table=model._meta.db_table, ids=_JOINED_IDS))
            params.append(joined)
        else:  # an id holding the separator (one that skipped the rule): sent as an array
            selects.append(_STORED_IDS.format(table=model._meta.db_table, ids="%s"))
            params.append(ids)
    if not selects:
        return set()
    with (
        transaction.atomic(savepoint=False),
        prepared_cursor() as cursor,
        local_setting(cursor, "enable_seqscan", "off"),
    ):
        cursor.execute(" UNION ALL ".join(selects), params)
        return {row[0] for row in cursor.fetchall()}


def _store(events: list[EventIn], pricer: Pricer, await_jobs: bool) -> int:
    """Store the events not stored yet (in the caller's transaction); answers how many."""
    zone = zone_for_writing()
    projects = projects_ensure(e.project for e in events)
    first_seen: dict[str, tuple[int, datetime]] = {}
    for e in events:
        if e.run_id and (e.run_id not in first_seen or e.occurred_at < first_seen[e.run_id][1]):
            first_seen[e.run_id] = (projects[e.project], e.occurred_at)
    # New runs' rollup rows are written last: locked until the commit, they would make
    # concurrent batches of the same project and day wait for this whole batch.
    run_deltas = RunRollupDeltas(zone)
    runs = runs_ensure(first_seen, zone=zone, deltas=run_deltas)
    jobs = jobs_lookup((runs[e.run_id].id, e.job_id) for e in events if e.run_id and e.job_id)
    if await_jobs:
        _jobs_awaited(events, runs, jobs)
    times = [e.occurred_at for e in events]
    first, last = utc_month(min(times)), utc_month(max(times))
    # Nearly every batch falls in one month: two conversions instead of one per event.
    partitions_ensure_months({first} if first == last else {utc_month(t) for t in times})
    # After every wait above, so a concurrent batch that made this one wait is seen.
    known = stored_ids(
        {
            LlmUsageEvent: [e.event_id for e in events if isinstance(e, LlmEventIn)],
            InfraUsageEvent: [e.event_id for e in events if not isinstance(e, LlmEventIn)],
        }
    )
    events = [e for e in events if e.event_id not in known]
    # The calls without a client cost, priced in one go (in their order, as read below).
    prices = iter(
        pricer.price_all(e for e in events if isinstance(e, LlmEventIn) and e.cost is None)
    )
    llm_rows: list[tuple] = []
    infra_rows: list[tuple] = []
    # Each row: REFERENCE_COLUMNS, the event's own columns, ROLLUP_COLUMNS (the run's).
    run_columns = {key: (run.id, run.run_type, run.template) for key, run in runs.items()}
    no_run = (None, "", "")
    for e in events:
        run_pk, run_type, template = run_columns[e.run_id] if e.run_id else no_run
        job_ref = e.job_id
        job_pk = jobs.get((run_pk, job_ref)) if run_pk and job_ref else None
        if isinstance(e, LlmEventIn):
            priced = next(prices) if e.cost is None else None
            own = _llm_values(e, priced)
            rows = llm_rows
        else:
            own = infra_values(e)
            rows = infra_rows
        refs = (e.event_id, e.occurred_at, projects[e.project], run_pk, job_pk, job_ref)
        rows.append((*refs, *own, run_type, template))
    # The ledger's and the step rollup's rows of this batch go to its stripe.
    params = {"zone": str(zone), "stripe": rollup_stripe()}
    try:
        llm = _copy_insert(
            LLM_TEMP,
            "ingest_llm",
            LLM_TYPES,
            llm_rows,
            LLM_ROLLUP,
            params,
            first=LLM_INSERT,
            last=LLM_STEPS,
        )
        infra = _copy_insert(
            INFRA_TEMP,
            "ingest_infra",
            INFRA_TYPES,
            infra_rows,
            INFRA_ROLLUP,
            params,
            first=INFRA_INSERT,
        )
    except IntegrityError as exc:
        cause = exc.__cause__
        if isinstance(cause, pg_errors.UniqueViolation) and (
            cause.diag.table_name or ""
        ).startswith(EVENT_TABLES):
            raise EventRace(str(cause.diag.message_detail)) from exc
        raise
    run_deltas.apply()
    # Summary columns follow LLM_MEASURES: model, calls, unpriced, 4 token kinds, cost.
    accepted = int(sum(row[1] for row in llm) + sum(row[1] for row in infra))
    if accepted:
        usage_stored.send(sender=events_ingest, accepted=accepted)
    if llm:
        tenant = tenant_label() or "public"
        usage = [
            (row[0], dict(zip(TOKEN_KINDS, map(int, row[3:7]), strict=True)), row[7]) for row in llm
        ]
        transaction.on_commit(
            lambda: metrics.guarded(lambda: metrics.llm_usage_record(tenant=tenant, usage=usage))
        )
    return accepted


# Locks the runs whose calls name a job not stored yet, in the order lifecycle batches lock
# runs (``usage.services.runs``: ``FOR UPDATE`` by run id), so neither waits for the other the
# wrong way round. ``FOR KEY SHARE`` conflicts only with ``FOR UPDATE``: events batches never
# wait for each other here.
_RUNS_KEY_SHARE = "SELECT id FROM usage_run WHERE id = ANY(%s) ORDER BY run_id FOR KEY SHARE"


def _jobs_awaited(
    events: list[EventIn], runs: Mapping[str, RunRef], jobs: dict[tuple[int, str], int]
) -> None:
    """Calls naming a job that is not stored yet count in the step rollup when the lifecycle
    batch that stores the job reads its run's calls. A lifecycle batch running at this moment
    would not see this batch's calls, nor this batch its job, and the calls would be counted by
    neither (the Steps page missed them until a rebuild): so their runs are locked first (a
    lifecycle batch holding one is waited for, and one that comes later waits for this commit)
    and their jobs looked up again. Adds to ``jobs``; no lock when every job is known."""
    awaited = {
        runs[e.run_id].id
        for e in events
        if e.run_id
        and e.job_id
        and isinstance(e, LlmEventIn)
        and (runs[e.run_id].id, e.job_id) not in jobs
    }
    if not awaited:
        return
    with prepared_cursor() as cursor:
        cursor.execute(_RUNS_KEY_SHARE, [sorted(awaited)])
    jobs.update(
        jobs_lookup(
            (runs[e.run_id].id, e.job_id)
            for e in events
            if e.run_id and e.job_id and runs[e.run_id].id in awaited
        )
    )


def _llm_values(e: LlmEventIn, priced: PricedCall | None) -> tuple:
    """The LLM columns after the references: the call as sent, its cost and the cost's source
    (the client's cost if it sent one, else ``priced``: the price book's, or unpriced)."""
    if e.cost is not None:
        return (*llm_call_values(e), e.cost, _CLIENT, None, None)
    if priced is None:
        return (*llm_call_values(e), None, _UNPRICED, None, None)
    return (*llm_call_values(e), priced.cost, _PRICE_BOOK, priced.price_ref, priced.override_ref)


# The sources as stored (``str`` of a choice is a Python call per row).
_CLIENT, _UNPRICED, _PRICE_BOOK = (
    str(source) for source in (CostSource.CLIENT, CostSource.UNPRICED, CostSource.PRICE_BOOK)
)
