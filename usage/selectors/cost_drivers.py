"""What drove a period's AI cost, read from the rollups and the run ledger (never the raw
events), so any two periods of a big tenant answer in milliseconds: usage per template,
provider and model (tokens by kind, cost), runs per template, and per template the AI cost of
failed and cancelled runs and of retried attempts.

Days are the tenant's (``start <= day < end``); hours are UTC instants (``start <= hour <
end``). Amounts are ``Decimal`` USD as stored (10 places); callers round at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum

from factory_portal.db_routing import read_connection
from usage.models import (
    LlmUsageDaily,
    LlmUsageHourly,
    Run,
    RunDaily,
    RunLedger,
    RunStatus,
)

WASTED_STATUSES = (RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass(frozen=True)
class UsageCell:
    template: str
    provider: str
    model: str
    input_tokens: int  # cached and cache-write tokens included
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cost: Decimal


_SUMS = {
    "input": Sum("input_tokens"),
    "output": Sum("output_tokens"),
    "cached": Sum("cached_input_tokens"),
    "write": Sum("cache_write_tokens"),
    "amount": Sum("cost"),
}


def _cells(rows) -> list[UsageCell]:  # type: ignore[no-untyped-def]
    return [
        UsageCell(
            r["template"],
            r["provider"],
            r["model"],
            int(r["input"]),
            int(r["output"]),
            int(r["cached"]),
            int(r["write"]),
            r["amount"],
        )
        for r in rows.values("template", "provider", "model").annotate(**_SUMS).order_by()
    ]


def usage_cells(*, start: date, end: date) -> list[UsageCell]:
    """AI usage per template, provider and model on the tenant's days (the daily rollup)."""
    return _cells(LlmUsageDaily.objects.filter(day__gte=start, day__lt=end))


def usage_cells_hourly(*, hours: list[datetime]) -> list[UsageCell]:
    """AI usage per template, provider and model in the UTC hours starting at ``hours`` (the
    hourly rollup)."""
    return _cells(LlmUsageHourly.objects.filter(hour__in=hours))


def runs_by_template(*, start: date, end: date) -> dict[str, int]:
    """Runs requested on the tenant's days, per template (the daily run rollup)."""
    rows = (
        RunDaily.objects.filter(day__gte=start, day__lt=end)
        .values("template")
        .annotate(n=Sum("runs"))
        .order_by()
    )
    return {r["template"]: int(r["n"]) for r in rows}


def runs_by_template_hourly(*, hours: list[datetime]) -> dict[str, int]:
    """Runs requested in the UTC hours starting at ``hours``, per template (a few hours: the
    run table's requested-at index)."""
    if not hours:
        return {}
    window = Q()
    for hour in hours:
        window |= Q(requested_at__gte=hour, requested_at__lt=hour + timedelta(hours=1))
    rows = (
        Run.objects.filter(window).values("template_recipe_id").annotate(n=Count("id")).order_by()
    )
    return {r["template_recipe_id"]: r["n"] for r in rows}


def failed_run_cost_by_template(*, start: date, end: date) -> dict[str, Decimal]:
    """AI cost on the tenant's days of runs that failed or were cancelled, per template (the run
    ledger, joined to the runs' status)."""
    rows = (
        RunLedger.objects.filter(day__gte=start, day__lt=end, run__status__in=WASTED_STATUSES)
        .values("run__template_recipe_id")
        .annotate(amount=Sum("cost"))
        .order_by()
    )
    return {r["run__template_recipe_id"]: r["amount"] for r in rows if r["amount"]}


# Per template, each step's cost x retries / attempts on each day: a key's figures are the sum of
# its rows (one per stripe written, ``StepDaily.stripe``), so the share is taken of the sums.
_RETRY_COST = """
SELECT template, sum(cost * retries / NULLIF(attempts, 0))
FROM (
    SELECT day, template, step_name, sum(cost) AS cost, sum(retries) AS retries,
           sum(attempts) AS attempts
    FROM usage_stepdaily WHERE day >= %(start)s AND day < %(end)s
    GROUP BY 1, 2, 3
) s
WHERE retries > 0
GROUP BY template
"""


def retry_cost_by_template(*, start: date, end: date) -> dict[str, Decimal]:
    """AI cost of retried attempts per template, estimated from the step rollup as each
    step's cost x retries / attempts (an attempt's average cost) for runs requested on the days.
    The rollup does not know run statuses, so a failed run's retries count here too: callers
    cap a template's waste at its cost."""
    with read_connection().cursor() as cursor:
        cursor.execute(_RETRY_COST, {"start": start, "end": end})
        return {template: amount for template, amount in cursor.fetchall() if amount}
