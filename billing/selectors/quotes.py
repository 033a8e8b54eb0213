"""Quotes before a run (the current tenant's schema): the expected AI cost, total cost and
duration of a run of a project, template and run type, with P50/P90 from the comparable runs
that finished in the last ``HISTORY_DAYS`` local days, and the expected cost of its steps.

The rules (quantiles, the fallback ladder, expected steps) are ``billing.domain.quotes``; this
module fetches the history through ``usage.selectors.run_history`` and keeps each template's
comparable sets in the cache, keyed by schema, time zone, template and days, served only while
the history's fingerprint is unchanged (a run of the template finished, a call was re-priced,
infrastructure was allocated) and for at most ``CACHE_SECONDS`` (a call stored after its run
finished changes no fingerprint). The steps' expected costs are read fresh each time (the step
rollup less the template's active runs, and the finished runs' count). It never writes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from billing.domain import quotes as rules
from billing.models import Budget
from billing.operator.models import AllocationRun
from billing.selectors.periods import month_cost
from factory_portal.periods import local_date, month_of
from factory_portal.tenants.connection import connection_zone
from usage.selectors import run_history

logger = logging.getLogger(__name__)
HISTORY_DAYS = 30
CACHE_SECONDS = 600
TEMPLATES_LISTED = 50  # the quotes page lists at most this many templates (most runs first)
STEP_PLACES = Decimal("0.0000000001")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Spread:  # USD Decimals with 2 places for money; ints for duration
    # Typed as the interface the run guard codes against says (Decimal); ``Quote.duration_ms``
    # holds ints (milliseconds), which every Decimal operation accepts.
    p50: Decimal
    p90: Decimal


@dataclass(frozen=True)
class StepExpectation:
    step_name: str
    expected_cost: (
        Decimal  # USD, 10 places: mean AI cost of this step in a finished run that had it
    )
    runs: int  # (run, step) pairs it was measured on (finished runs only)
    # The share of the template's finished runs that had the step (pairs / runs, at most 1; 10
    # places): an optional step's expected cost in a run is ``expected_cost * share``.
    share: Decimal = Decimal(1)


@dataclass(frozen=True)
class Quote:
    project: str
    template: str
    run_type: str
    scope: str  # which comparable set answered: "project", "template_run_type", "template"
    runs: int  # comparable finished runs used
    start: date  # the local days the history covers (inclusive)
    end: date
    ai_cost: Spread
    total_cost: Spread
    duration_ms: Spread  # ints inside
    steps: tuple[StepExpectation, ...]


@dataclass(frozen=True)
class TemplateHistory:
    """One template's history: its comparable sets (what the cache keeps) and its steps."""

    fingerprint: tuple[object, ...]
    quotes: rules.TemplateQuotes
    steps: dict[str, StepExpectation]


def _fingerprint(template: str, start: date, end: date) -> tuple[object, ...]:
    allocations = (
        AllocationRun.objects.filter(period__gte=month_of(start), period__lte=end)
        .order_by("period")
        .values_list("pk", "status", "computed_at")
    )
    return (
        *run_history.history_fingerprint(template=template, start=start, end=end),
        *allocations,
    )


def history_window(today: date, days: int = HISTORY_DAYS) -> tuple[date, date]:
    """The local days (inclusive) a quote made on ``today`` reads: the ``days`` ending today."""
    return today - timedelta(days=days - 1), today


def _today() -> date:
    return local_date(timezone.now(), connection_zone())


def _key(template: str, start: date, end: date, zone: ZoneInfo) -> str:
    digest = hashlib.sha256(template.encode()).hexdigest()[:24]
    return f"quotes:v2:{connection.schema_name}:{zone}:{digest}:{start}:{end}"


def sample_of(run: run_history.FinishedRun) -> rules.Sample:
    return rules.Sample(
        project=run.project,
        run_type=run.run_type,
        ai_cost=run.ai_cost,
        total_cost=run.total_cost,
        duration_ms=run.duration_ms,
        finished_on=run.finished_on,
    )


def _steps(template: str, start: date, end: date, zone: ZoneInfo) -> dict[str, StepExpectation]:
    """The template's steps in its finished runs requested in the window (active runs' jobs and
    calls are not in: their cost is not known yet)."""
    finished = run_history.finished_runs_requested(template=template, start=start, end=end)
    return {
        row.step_name: StepExpectation(
            step_name=row.step_name,
            expected_cost=(row.cost / row.runs).quantize(STEP_PLACES),
            runs=row.runs,
            share=(
                min(Decimal(1), Decimal(row.runs) / finished) if finished else Decimal(1)
            ).quantize(STEP_PLACES),
        )
        for row in run_history.step_costs(template=template, start=start, end=end, zone=zone)
        if row.runs > 0
    }


def template_history(*, template: str, today: date | None = None) -> TemplateHistory:
    """``template``'s comparable sets and steps over the history window of ``today`` (the
    tenant's today by default): the sets from the cache while the fingerprint holds (at most
    ``CACHE_SECONDS``), else computed; the steps read now."""
    zone = connection_zone()
    start, end = history_window(today or local_date(timezone.now(), zone))
    key = _key(template, start, end, zone)
    fingerprint = _fingerprint(template, start, end)
    steps = _steps(template, start, end, zone)
    try:
        cached = cache.get(key)
    except Exception:  # a cache outage costs time, never the answer
        logger.warning("quote cache unavailable; computing", exc_info=True)
        cached = None
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == fingerprint:
        return TemplateHistory(fingerprint, cached[1], steps)
    runs = run_history.finished_runs(start=start, end=end, template=template)
    quotes = rules.template_quotes((sample_of(r) for r in runs), start=start, end=end)
    try:
        cache.set(key, (fingerprint, quotes), timeout=CACHE_SECONDS)
    except Exception:
        logger.warning("quote not cached (cache unavailable)", exc_info=True)
    return TemplateHistory(fingerprint, quotes, steps)


def _ordered(steps: dict[str, StepExpectation]) -> tuple[StepExpectation, ...]:
    return tuple(sorted(steps.values(), key=lambda s: (-s.expected_cost, s.step_name)))


def quote_of(
    found: rules.Distribution,
    *,
    project: str,
    template: str,
    run_type: str,
    scope: str,
    history: TemplateHistory,
    steps: Sequence[str] | None,
) -> Quote:
    """A :class:`Quote` of the comparable set ``found``, money rounded to the cent here."""
    if steps is None:
        chosen = _ordered(history.steps)
    else:
        chosen = tuple(
            history.steps.get(name, StepExpectation(name, ZERO.quantize(STEP_PLACES), 0))
            for name in dict.fromkeys(steps)
        )
        found = rules.for_steps(found, sum((s.expected_cost for s in chosen), ZERO))
    return Quote(
        project=project,
        template=template,
        run_type=run_type,
        scope=scope,
        runs=found.runs,
        start=history.quotes.start,
        end=history.quotes.end,
        ai_cost=Spread(rules.cents(found.ai_p50), rules.cents(found.ai_p90)),
        total_cost=Spread(rules.cents(found.total_p50), rules.cents(found.total_p90)),
        duration_ms=Spread(found.duration_p50, found.duration_p90),  # type: ignore[arg-type]
        steps=chosen,
    )


def quote_compute(
    *,
    project: str,
    template: str,
    run_type: str,
    steps: Sequence[str] | None = None,
    today: date | None = None,
) -> Quote | None:
    """The quote of a run of ``project``, ``template`` and ``run_type`` (optionally of the given
    ``steps``) from the comparable runs finished in the ``HISTORY_DAYS`` local days to ``today``;
    None when no comparable run finished then at all."""
    history = template_history(template=template, today=today)
    answer = history.quotes.answer(project=project, run_type=run_type)
    if answer is None:
        return None
    scope, found = answer
    return quote_of(
        found,
        project=project,
        template=template,
        run_type=run_type,
        scope=scope,
        history=history,
        steps=steps,
    )


def step_expectations(*, template: str, today: date | None = None) -> dict[str, StepExpectation]:
    """``template``'s steps over the history window, from its finished runs: the mean AI cost of
    each step in a run that had it (USD, 10 places), the (run, step) pairs measured and the
    share of the finished runs that had it, by step name."""
    return dict(template_history(template=template, today=today).steps)


@dataclass(frozen=True)
class BudgetHeadroom:
    month: date
    project: str  # the budget's project; "" for the tenant's budget
    basis: str  # ai | total: which spread is taken from it
    amount: Decimal
    spent: Decimal  # month to date, on the budget's basis
    headroom_after_p90: Decimal  # amount - spent - P90, to the cent (negative: over)


def quote_budget(quote: Quote, *, today: date | None = None) -> BudgetHeadroom | None:
    """What the month's budget (the project's, else the tenant's) leaves after the quote's P90
    (AI P90 on an AI budget, total P90 on a total budget); None without a budget."""
    today = today or _today()
    budgets = {b.project: b for b in Budget.objects.filter(project__in=[quote.project, ""])}
    budget = budgets.get(quote.project) or budgets.get("")
    if budget is None:
        return None
    month = month_of(today)
    cost = month_cost(tenant=connection.tenant, month=month, project=budget.project)
    total_basis = budget.basis == Budget.Basis.TOTAL
    # The spend shown, in cents, is the spend subtracted: amount - spent - P90 = headroom exactly.
    spent = rules.cents(cost.total if total_basis else cost.ai)
    p90 = quote.total_cost.p90 if total_basis else quote.ai_cost.p90
    return BudgetHeadroom(
        month=month,
        project=budget.project,
        basis=budget.basis,
        amount=budget.amount,
        spent=spent,
        headroom_after_p90=rules.cents(rules.headroom(budget=budget.amount, spent=spent, p90=p90)),
    )


@dataclass(frozen=True)
class TemplateRow:
    """A row of the quotes page: a template and run type (``run_type`` None: every run type)."""

    template: str
    run_type: str | None
    quote: Quote


@dataclass(frozen=True)
class TemplateTable:
    template: str
    rows: list[TemplateRow]
    steps: tuple[StepExpectation, ...]


def quotes_table(*, today: date | None = None) -> list[TemplateTable]:
    """Per template with finished runs in the window (at most ``TEMPLATES_LISTED``, most runs
    first): its quote per run type (any project) and, with several run types, over every run
    type (``run_type`` None), with its steps."""
    today = today or _today()
    start, end = history_window(today)
    runs: dict[str, int] = {}
    for template, _, count in run_history.history_templates(start=start, end=end):
        runs[template] = runs.get(template, 0) + count
    listed = sorted(runs, key=lambda t: (-runs[t], t))[:TEMPLATES_LISTED]
    tables = []
    for template in sorted(listed):
        history = template_history(template=template, today=today)
        rows = []
        for key, found in history.quotes.sets.items():
            if len(key) == 2:
                continue
            run_type = key[0] if key else None
            scope = rules.TEMPLATE_RUN_TYPE if key else rules.TEMPLATE
            quote = quote_of(
                found,
                project="",
                template=template,
                run_type=run_type or "",
                scope=scope,
                history=history,
                steps=None,
            )
            rows.append(TemplateRow(template, run_type, quote))
        if len(rows) == 2:  # one run type: its row and "every run type" say the same
            rows = [row for row in rows if row.run_type is not None]
        if rows:
            rows.sort(key=lambda r: (r.run_type is None, r.run_type or ""))
            tables.append(TemplateTable(template, rows, _ordered(history.steps)))
    return tables
