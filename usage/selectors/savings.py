"""Usage read for the savings page (``billing.selectors.savings``): prompt-cache tokens per day,
project and model from the daily rollup, and per template, step and model the (run, step) pairs
of a bounded period with their first-pass outcome and AI cost.

The pairs are read from jobs joined to their calls (not from a rollup: the step rollup has no
model), so the period is capped at ``PAIRS_MAX_DAYS`` and every join starts from the runs
requested in it (``run_requested_idx``), reaching jobs, calls and cost corrections through their
run indexes: the work grows with the period's runs, never with the tenant's history. Costs are
USD as stored (10 places, corrections included); nothing here rounds or prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum

from factory_portal.db_routing import read_connection
from usage.models import LlmUsageDaily

PAIRS_MAX_DAYS = 31


@dataclass(frozen=True)
class CacheUsageDay:
    """One tenant day's prompt-cache tokens of a project's model (from ``LlmUsageDaily``)."""

    day: date
    project: str
    provider: str
    model: str
    input_tokens: int  # includes cached and cache-write tokens
    cached_input_tokens: int
    cache_write_tokens: int


def cache_usage_daily(*, start: date, end: date) -> list[CacheUsageDay]:
    """Input, cached and cache-write tokens per tenant day ``start <= day < end``, project and
    model (every operation and run together); rows without input tokens are left out."""
    rows = (
        LlmUsageDaily.objects.filter(day__gte=start, day__lt=end, input_tokens__gt=0)
        .values("day", "project__slug", "provider", "model")
        .annotate(
            input=Sum("input_tokens"),
            cached=Sum("cached_input_tokens"),
            write=Sum("cache_write_tokens"),
        )
        .order_by("day", "project__slug", "provider", "model")
    )
    return [
        CacheUsageDay(
            day=row["day"],
            project=row["project__slug"],
            provider=row["provider"],
            model=row["model"],
            input_tokens=row["input"],
            cached_input_tokens=row["cached"],
            cache_write_tokens=row["write"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class StepModelPairs:
    """The settled (run, step) pairs of a template's step whose calls were mostly (by cost) on
    one model."""

    template: str
    step: str
    provider: str
    model: str
    pairs: int  # (run, step) pairs; a run runs a step once, so also the runs
    first_pass: int  # pairs whose jobs all succeeded at their first attempt
    cost: Decimal  # USD, the pairs' AI cost on every model (10 places)


class PeriodTooLong(ValueError):
    pass


# A pair is settled when every job's first attempt finished; it passed first time when every
# job's first attempt succeeded. Calls count under the step of the latest attempt of the job
# they name (as the step rollup counts them). A pair's model is the one it spent most on; pairs
# with an unpriced call are left out (their cost is not known). Outcomes and costs of a pair
# meet in one grouping (a UNION ALL, not a join of two aggregates: the planner cannot estimate
# such a join and chose a nested loop that took minutes on 1.5 M calls). Text keys are sorted
# and grouped byte-wise (COLLATE "C"): the locale's collation tripled the sorts. Jobs, calls
# and corrections are looked up by ``run_id = ANY(ARRAY(...))``: a join to the runs let the
# planner merge-join the whole of each table's run index instead.
_PAIRS = """
WITH runs AS MATERIALIZED (
    SELECT id, template_recipe_id AS template FROM usage_run
    WHERE requested_at >= %(start)s AND requested_at < %(end)s
),
jobs AS MATERIALIZED (
    SELECT j.run_id, j.job_id COLLATE "C" AS job_id, j.step_name COLLATE "C" AS step_name,
           j.attempt, j.status,
           min(j.attempt) OVER (PARTITION BY j.run_id, j.job_id) AS first,
           max(j.attempt) OVER (PARTITION BY j.run_id, j.job_id) AS last
    FROM usage_job j WHERE j.run_id = ANY(ARRAY(SELECT id FROM runs))
),
corrections AS (
    SELECT c.event_id, sum(c.delta) AS delta FROM usage_llmcostcorrection c
    WHERE c.run_id = ANY(ARRAY(SELECT id FROM runs)) GROUP BY 1
),
job_calls AS (
    SELECT e.run_id, e.job_ref COLLATE "C" AS job_ref, e.provider COLLATE "C" AS provider,
           e.model COLLATE "C" AS model,
           coalesce(sum(e.cost), 0) + coalesce(sum(c.delta), 0) AS cost,
           count(*) FILTER (WHERE e.cost IS NULL) AS unpriced
    FROM usage_llmusageevent e
    LEFT JOIN corrections c ON c.event_id = e.event_id
    WHERE e.run_id = ANY(ARRAY(SELECT id FROM runs)) AND e.job_ref <> ''
    GROUP BY 1, 2, 3, 4
),
step_calls AS (
    SELECT j.run_id, j.step_name, c.provider, c.model, sum(c.cost) AS cost,
           sum(c.unpriced) AS unpriced
    FROM job_calls c
    JOIN jobs j ON j.run_id = c.run_id AND j.job_id = c.job_ref AND j.attempt = j.last
    GROUP BY 1, 2, 3, 4
),
pair_costs AS (
    SELECT DISTINCT ON (run_id, step_name) run_id, step_name, provider, model,
           sum(cost) OVER pair AS cost, sum(unpriced) OVER pair AS unpriced
    FROM step_calls
    WINDOW pair AS (PARTITION BY run_id, step_name)
    ORDER BY run_id, step_name, cost DESC, provider, model
),
facts AS (
    SELECT run_id, step_name, NULL AS provider, NULL AS model, 0 AS cost, 0 AS unpriced,
           status IN ('Succeeded', 'Failed', 'Cancelled') AS settled,
           status = 'Succeeded' AS passed
    FROM jobs WHERE attempt = first
    UNION ALL
    SELECT run_id, step_name, provider, model, cost, unpriced, NULL, NULL FROM pair_costs
),
pairs AS (
    SELECT run_id, step_name, bool_and(settled) AS settled, bool_and(passed) AS first_pass,
           sum(cost) AS cost, sum(unpriced) AS unpriced, max(provider) AS provider,
           max(model) AS model
    FROM facts GROUP BY 1, 2
)
SELECT r.template, p.step_name, p.provider, p.model, count(*),
       count(*) FILTER (WHERE p.first_pass), sum(p.cost)
FROM pairs p JOIN runs r ON r.id = p.run_id
WHERE p.settled AND p.unpriced = 0 AND p.model IS NOT NULL
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""


def step_model_pairs(*, start: datetime, end: datetime) -> list[StepModelPairs]:
    """Per template, step and model, the settled (run, step) pairs of the runs requested in
    ``start <= requested_at < end`` (at most ``PAIRS_MAX_DAYS`` days; ``PeriodTooLong``
    otherwise)."""
    # An hour of slack: 31 local days across a change to winter time are 31 days and an hour.
    if end - start > timedelta(days=PAIRS_MAX_DAYS, hours=1):
        raise PeriodTooLong(f"The step and model comparison covers at most {PAIRS_MAX_DAYS} days.")
    with read_connection().cursor() as cursor:
        cursor.execute(_PAIRS, {"start": start, "end": end})
        rows = cursor.fetchall()
    return [
        StepModelPairs(
            template=template,
            step=step,
            provider=provider,
            model=model,
            pairs=pairs,
            first_pass=first_pass,
            cost=cost,
        )
        for template, step, provider, model, pairs, first_pass, cost in rows
    ]
