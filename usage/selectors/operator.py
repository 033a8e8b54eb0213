"""Figures of many tenants read in a few statements: the operator console's page of tenants,
the cost per customer, allocation's usage drivers, the estimates bills are compared with and
the models in use.

Visiting each tenant's schema in turn costs a schema switch and a handful of queries per tenant
(1.4 s p95 for the console's first page at 1,000 tenants); these read the same rollups of every
schema asked in ``UNION ALL`` statements (as many schemas each as ``LOCKS_PER_STATEMENT``
allows), each schema's tables named in full. They cross tenants on purpose: only the operator's
pages and tasks (public schema) call them with more than one schema; a tenant's own reads
(``usage.selectors.allocation_drivers``) pass its schema alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from factory_portal import periods
from usage.models import (
    ACTIVE_RUN_STATUSES,
    InfraUsageDaily,
    InfraUsageHourly,
    LlmUsageDaily,
    LlmUsageHourly,
    Project,
    Run,
    RunDaily,
    RunLedger,
)

SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class TenantPeriod:
    """One tenant of the page: its schema, the first day of its month and its today (in its
    own time zone)."""

    schema_name: str
    month_start: date
    today: date


@dataclass(frozen=True)
class TenantFigures:
    month_cost: Decimal  # AI (token) cost, month to date (corrections included)
    month_runs: int
    active_runs: int
    complete_until: datetime | None


def _qualified(schema: str, model: type) -> str:
    """A model's table in ``schema``, named in full (only names the portal makes)."""
    if not SCHEMA_RE.fullmatch(schema):
        raise ValueError(f"Not a tenant schema name: {schema!r}")
    return f'"{schema}"."{model._meta.db_table}"'  # type: ignore[attr-defined]


# Relation locks one statement may take. PostgreSQL locks every relation a statement opens (each
# table, and each of its indexes while planning) until the transaction ends, in a lock table all
# sessions share: ``max_locks_per_transaction`` (64 by default) times ``max_connections`` (100)
# slots. Allocation's drivers over 500 schemas asked for 13,500 and failed ("out of shared
# memory"), so each reader says how many relations a schema's part opens (``*_LOCKS``, held to
# it by a test) and a statement takes as many schemas as fit in this budget.
LOCKS_PER_STATEMENT = 1000
ROLLUP_LOCKS = 4  # one rollup table and its indexes
FIGURES_LOCKS = 27  # the daily, hourly and run rollups and the runs, with their indexes
DRIVERS_LOCKS = 27  # the daily rollups, projects, runs and the run ledger, with their indexes


def _across(
    schemas: Sequence[str], part: Callable[[str], tuple[str, list[object]]], *, locks: int
) -> Iterator[tuple]:
    """The rows of ``part``'s statement (SQL and parameters for one schema, opening ``locks``
    relations) run in each of ``schemas``: their ``UNION ALL``, as many schemas a statement as
    ``LOCKS_PER_STATEMENT`` allows. Outside a transaction each statement's locks end with it;
    inside one they add up, so callers read before they open one."""
    per_statement = max(1, LOCKS_PER_STATEMENT // locks)
    for first in range(0, len(schemas), per_statement):
        parts, params = [], []
        for schema in schemas[first : first + per_statement]:
            sql, own = part(schema)
            parts.append(f"({sql})")
            params += own
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            yield from cursor.fetchall()


def _schema_sql(schema: str) -> str:
    # Identifiers cannot be parameters: only names the portal makes get into the SQL (a name
    # that is not a portal schema is refused by ``_qualified``).
    def table(model: type) -> str:
        return _qualified(schema, model)

    def newest(model: type) -> str:
        return (
            f"(SELECT max(last_occurred_at) FROM {table(model)} WHERE hour = "  # noqa: S608
            f"(SELECT max(hour) FROM {table(model)}))"
        )

    statuses = ", ".join(f"'{s}'" for s in ACTIVE_RUN_STATUSES)
    # Checked schema name, model table names:
    return (
        f"SELECT %s::text,"  # noqa: S608
        f" (SELECT coalesce(sum(cost), 0) FROM {table(LlmUsageDaily)}"
        f"  WHERE day >= %s AND day < (%s::date + interval '1 month')::date),"
        f" (SELECT coalesce(sum(runs), 0) FROM {table(RunDaily)} WHERE day >= %s AND day <= %s),"
        f" (SELECT count(*) FROM {table(Run)} WHERE status IN ({statuses})),"
        f" greatest({newest(LlmUsageHourly)}, {newest(InfraUsageHourly)})"
    )


def tenants_figures(tenants: Sequence[TenantPeriod]) -> dict[str, TenantFigures]:
    """Month-to-date AI cost and runs, active runs and data freshness of each of ``tenants``
    (a page of them), by schema name."""
    by_schema = {t.schema_name: t for t in tenants}

    def part(schema: str) -> tuple[str, list[object]]:
        t = by_schema[schema]
        return _schema_sql(schema), [schema, t.month_start, t.month_start, t.month_start, t.today]

    rows = _across(list(by_schema), part, locks=FIGURES_LOCKS)
    return {
        schema: TenantFigures(
            month_cost=Decimal(cost),
            month_runs=int(runs),
            active_runs=int(active),
            complete_until=until,
        )
        for schema, cost, runs, active, until in rows
    }


def tenants_monthly_token_cost(
    schemas: Sequence[str], *, start: date, end: date
) -> dict[str, dict[date, Decimal]]:
    """AI (token) cost per tenant and month (its first day) of the tenant's days
    ``start <= day < end`` (re-pricing corrections included, as ``daily_token_cost`` reads it),
    by schema name (the cost per customer read each schema in turn: 10,000 tenants, 10,000
    queries)."""

    def part(schema: str) -> tuple[str, list[object]]:
        daily = _qualified(schema, LlmUsageDaily)
        return (
            f"SELECT %s::text, date_trunc('month', day)::date, sum(cost) FROM {daily}"  # noqa: S608
            " WHERE day >= %s AND day < %s GROUP BY 2",
            [schema, start, end],
        )

    out: dict[str, dict[date, Decimal]] = {schema: {} for schema in schemas}
    for schema, month, cost in _across(schemas, part, locks=ROLLUP_LOCKS):
        out[schema][month] = Decimal(cost)
    return out


# What shared infrastructure cost is split by (``allocation_drivers``), in the order listed.
DRIVERS = ("tokens", "token_cost", "job_seconds", "cpu_seconds", "gb_hours", "runs")


def tenants_allocation_drivers(
    schemas: Sequence[str], *, start: date, end: date
) -> dict[str, dict[str, dict[str, Decimal]]]:
    """Each tenant's usage quantities per driver and project slug for its days
    ``start <= day < end`` (``usage.selectors.allocation_drivers``), by schema name: tokens and
    AI cost from the daily LLM rollup, machine time from the daily infrastructure rollup (usage
    outside runs included), ``runs`` (runs that used something) and ``job_seconds`` (their
    jobs' run time) from the run ledger. Projects without usage are absent, and so are drivers'
    zero quantities. What allocation reads for every tenant in a few statements (it read each
    schema in turn: three queries a tenant)."""

    def part(schema: str) -> tuple[str, list[object]]:
        project = _qualified(schema, Project)
        llm = _qualified(schema, LlmUsageDaily)
        infra = _qualified(schema, InfraUsageDaily)
        ledger, run = _qualified(schema, RunLedger), _qualified(schema, Run)
        # Checked schema name, model table names; a project's figures summed by its slug.
        sql = f"""
SELECT %s::text, v.driver, p.slug, v.quantity
FROM (
    SELECT project_id, sum(input_tokens + output_tokens)::numeric AS tokens, sum(cost) AS cost
    FROM {llm} WHERE day >= %s AND day < %s GROUP BY project_id
) x
JOIN {project} p ON p.id = x.project_id
CROSS JOIN LATERAL (VALUES ('tokens', x.tokens), ('token_cost', x.cost)) v (driver, quantity)
UNION ALL
SELECT %s::text, i.unit, p.slug, sum(i.quantity)::numeric
FROM {infra} i JOIN {project} p ON p.id = i.project_id
WHERE i.day >= %s AND i.day < %s AND i.unit IN ('cpu_seconds', 'gb_hours')
GROUP BY i.unit, p.slug
UNION ALL
SELECT %s::text, v.driver, p.slug, v.quantity
FROM (
    SELECT r.project_id, count(DISTINCT l.run_id)::numeric AS runs,
           sum(l.job_ms)::numeric AS job_ms
    FROM {ledger} l JOIN {run} r ON r.id = l.run_id
    WHERE l.day >= %s AND l.day < %s GROUP BY r.project_id
) x
JOIN {project} p ON p.id = x.project_id
CROSS JOIN LATERAL (VALUES ('runs', x.runs), ('job_ms', x.job_ms)) v (driver, quantity)
"""  # noqa: S608
        return sql, [schema, start, end] * 3

    out = {schema: {name: {} for name in DRIVERS} for schema in schemas}
    for schema, driver, slug, quantity in _across(schemas, part, locks=DRIVERS_LOCKS):
        if not quantity:
            continue
        if driver == "job_ms":  # seconds, divided here as Decimal divides
            driver, quantity = "job_seconds", Decimal(quantity) / 1000
        out[schema][driver][slug] = Decimal(quantity)
    return out


def tenants_estimated_cost(
    schemas: Sequence[str], *, start: date, end: date
) -> dict[str, dict[tuple[str, str, date], Decimal]]:
    """Each tenant's AI cost (USD, 10 decimal places, re-pricing corrections included) per
    (provider, model, UTC day) for the UTC days ``start <= day < end``, provider and model as
    clients reported them, by schema name: what the operator's bills from AI providers are
    compared with. Read from the hourly LLM rollup (``hour`` is a UTC hour start), so a day is
    exactly 24 UTC hours whatever the tenant's time zone; keys without cost are absent."""
    since, until = periods.day_start(start), periods.day_start(end)

    def part(schema: str) -> tuple[str, list[object]]:
        hourly = _qualified(schema, LlmUsageHourly)
        return (
            f"SELECT %s::text, provider, model, (hour AT TIME ZONE 'UTC')::date, sum(cost)"  # noqa: S608
            f" FROM {hourly} WHERE hour >= %s AND hour < %s GROUP BY 2, 3, 4",
            [schema, since, until],
        )

    out: dict[str, dict[tuple[str, str, date], Decimal]] = {schema: {} for schema in schemas}
    for schema, provider, model, day, cost in _across(schemas, part, locks=ROLLUP_LOCKS):
        if cost:
            out[schema][(provider, model, day)] = Decimal(cost)
    return out


def tenants_models_seen(schemas: Sequence[str]) -> set[tuple[str, str]]:
    """Every (provider, model) with at least one LLM call in any of ``schemas``, read from the
    daily rollups (a small ``DISTINCT`` each, never the events): the operator's "models in use"
    filter of the price book."""

    def part(schema: str) -> tuple[str, list[object]]:
        daily = _qualified(schema, LlmUsageDaily)
        return f"SELECT DISTINCT provider, model FROM {daily}", []  # noqa: S608

    return {(provider, model) for provider, model in _across(schemas, part, locks=ROLLUP_LOCKS)}
