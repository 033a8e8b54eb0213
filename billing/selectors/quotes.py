"""STAND-IN for the quotes helper's module (issue 19 part 1): only the interface the run guard
depends on, with a deliberately simple implementation. The real module replaces this file at
merge; nothing outside ``billing.selectors.quotes`` may rely on more than the names below.

``ai_cost`` is the per-run AI cost quantiles of comparable finished runs (last 90 days);
a step's ``expected_cost`` is the mean AI cost of that step per (run, step) pair of the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from factory_portal.periods import local_date
from factory_portal.tenants.connection import connection_zone
from usage.selectors.run_progress import finished_run_ai_costs, step_ai_costs

HISTORY_DAYS = 90


@dataclass(frozen=True)
class Spread:
    p50: Decimal
    p90: Decimal


@dataclass(frozen=True)
class StepExpectation:
    step_name: str
    expected_cost: Decimal
    runs: int


@dataclass(frozen=True)
class Quote:
    project: str
    template: str
    run_type: str
    scope: str
    runs: int
    start: date
    end: date
    ai_cost: Spread
    total_cost: Spread
    duration_ms: Spread
    steps: tuple[StepExpectation, ...]


def _since(today: date | None) -> tuple[date, datetime]:
    zone = connection_zone()
    today = today or local_date(timezone.now(), zone)
    start = today - timedelta(days=HISTORY_DAYS)
    return today, datetime.combine(start, time(), tzinfo=zone)


def _rank(values: list[Decimal], q: Decimal) -> Decimal:
    ordered = sorted(values)
    index = max(0, int((q * len(ordered)).to_integral_value(rounding="ROUND_CEILING")) - 1)
    return ordered[index]


def step_expectations(*, template: str, today: date | None = None) -> dict[str, StepExpectation]:
    today, since = _since(today)
    # Days before today: today's runs are mostly still running (their steps' cost partial).
    history = step_ai_costs(template=template, start=since.date(), end=today)
    return {
        step: StepExpectation(step, cost / runs, runs)
        for step, (cost, runs) in history.items()
        if runs
    }


def quote_compute(
    *,
    project: str,
    template: str,
    run_type: str,
    steps: list[str] | None = None,
    today: date | None = None,
) -> Quote | None:
    end, since = _since(today)
    costs = finished_run_ai_costs(
        template=template, project=project, run_type=run_type, since=since
    )
    if not costs:
        return None
    spread = Spread(_rank(costs, Decimal("0.5")), _rank(costs, Decimal("0.9")))
    expectations = step_expectations(template=template, today=end)
    return Quote(
        project=project,
        template=template,
        run_type=run_type,
        scope="project" if project else "template",
        runs=len(costs),
        start=since.date(),
        end=end,
        ai_cost=spread,
        total_cost=spread,
        duration_ms=Spread(Decimal(0), Decimal(0)),
        steps=tuple(
            e for name, e in sorted(expectations.items()) if steps is None or name in steps
        ),
    )
