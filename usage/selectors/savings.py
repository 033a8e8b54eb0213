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

from django.db import connection
from django.db.models import Sum

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
# with an unpriced call are left out (their cost is not known).
_PAIRS = """
WITH runs AS (
    SELECT id, template_recipe_id AS template FROM usage_run
    WHERE requested_at >= %(start)s AND requested_at < %(end)s
),
jobs AS (
    SELECT j.run_id, j.job_id, j.step_name, j.attempt, j.status,
           min(j.attempt) OVER (PARTITION BY j.run_id, j.job_id) AS first
    FROM usage_job j JOIN runs r ON r.id = j.run_id
),
pairs AS (
    SELECT run_id, step_name,
           bool_and(status IN ('Succeeded', 'Failed', 'Cancelled'))
               FILTER (WHERE attempt = first) AS settled,
           bool_and(status = 'Succeeded') FILTER (WHERE attempt = first) AS first_pass
    FROM jobs GROUP BY 1, 2
),
job_steps AS (
    SELECT DISTINCT ON (run_id, job_id) run_id, job_id, step_name FROM jobs
    ORDER BY run_id, job_id, attempt DESC
),
corrections AS (
    SELECT c.event_id, sum(c.delta) AS delta FROM usage_llmcostcorrection c
    JOIN runs r ON r.id = c.run_id GROUP BY 1
),
calls AS (
    SELECT s.run_id, s.step_name, e.provider, e.model,
           coalesce(sum(e.cost), 0) + coalesce(sum(c.delta), 0) AS cost,
           count(*) FILTER (WHERE e.cost IS NULL) AS unpriced
    FROM usage_llmusageevent e
    JOIN runs r ON r.id = e.run_id
    JOIN job_steps s ON s.run_id = e.run_id AND s.job_id = e.job_ref
    LEFT JOIN corrections c ON c.event_id = e.event_id
    GROUP BY 1, 2, 3, 4
),
pair_costs AS (
    SELECT run_id, step_name, sum(cost) AS cost, sum(unpriced) AS unpriced,
           (array_agg(provider ORDER BY cost DESC, provider, model))[1] AS provider,
           (array_agg(model ORDER BY cost DESC, provider, model))[1] AS model
    FROM calls GROUP BY 1, 2
)
SELECT r.template, p.step_name, pc.provider, pc.model, count(*),
       count(*) FILTER (WHERE p.first_pass), sum(pc.cost)
FROM pairs p
JOIN pair_costs pc ON pc.run_id = p.run_id AND pc.step_name = p.step_name
JOIN runs r ON r.id = p.run_id
WHERE p.settled AND pc.unpriced = 0
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""


def step_model_pairs(*, start: datetime, end: datetime) -> list[StepModelPairs]:
    """Per template, step and model, the settled (run, step) pairs of the runs requested in
    ``start <= requested_at < end`` (at most ``PAIRS_MAX_DAYS`` days; ``PeriodTooLong``
    otherwise)."""
    if end - start > timedelta(days=PAIRS_MAX_DAYS):
        raise PeriodTooLong(f"The step and model comparison covers at most {PAIRS_MAX_DAYS} days.")
    with connection.cursor() as cursor:
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
