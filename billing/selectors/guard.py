"""Reads of the run guard (current tenant schema): a run's live figures against its run budget
(``run_guard``: what ``GET /api/v1/runs/{run_id}/guard`` and the run page show), the stored
figures of many runs (``run_guards_stored``: the active runs page) and the reservation of the
month's budget by active runs (``reservation``).

The rules are ``billing.domain.guard``'s. A template's step expectations and a scope's quote are
read through ``billing.selectors.quotes`` and kept in the cache for ``EXPECTATIONS_TTL_S`` (they
move with finished runs, not with a run's own usage), so a live answer costs a few indexed
queries. Nothing here writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, Sum, Value, When
from django.utils import timezone

from billing.domain import guard as rules
from billing.models import RunBudget, RunGuard
from billing.selectors import quotes
from billing.selectors.budgets import BudgetStatus
from factory_portal.money import quantize_cents
from factory_portal.periods import local_date
from factory_portal.tenants.connection import connection_zone
from usage.selectors.run_progress import RunProgress, run_progress

EXPECTATIONS_TTL_S = 600
ZERO = Decimal(0)


@dataclass(frozen=True)
class QuoteFigures:
    p90: Decimal
    runs: int


@dataclass(frozen=True)
class GuardAnswer:
    run_id: str
    run_pk: int
    project: str
    template: str
    finished: bool
    evaluation: rules.Evaluation
    budget: RunBudget | None
    quote: QuoteFigures | None
    computed_at: datetime

    @property
    def state(self) -> str:
        return self.evaluation.state

    @property
    def limit_basis(self) -> str | None:
        return self.budget.basis if self.budget else None


def _cached(key: str, compute, *, refresh_after_s: float | None = None):  # type: ignore[no-untyped-def]
    """``compute()`` kept ``EXPECTATIONS_TTL_S``; recomputed when older than
    ``refresh_after_s`` (the guard pass refreshes before expiry, so answers stay warm)."""
    full = f"guard:{connection.schema_name}:{key}"
    try:
        found = cache.get(full)
    except Exception:  # no cache: compute every time
        return compute()
    fresh = found is not None and (
        refresh_after_s is None or time.time() - found[1] < refresh_after_s
    )
    if fresh:
        return found[0]
    value = compute()
    with suppress(Exception):  # a cache that is down only costs the next read its queries
        cache.set(full, (value, time.time()), EXPECTATIONS_TTL_S)
    return value


def _today() -> date:
    return local_date(timezone.now(), connection_zone())


def step_costs_expected(
    template: str, *, refresh_after_s: float | None = None
) -> dict[str, rules.StepExpected]:
    """The template's steps: expected AI cost in a run that has the step, and the share of
    finished runs that had it (cached)."""
    return _cached(
        f"steps2:{template}",
        lambda: {
            name: rules.StepExpected(e.expected_cost, e.share)
            for name, e in quotes.step_expectations(template=template, today=_today()).items()
        },
        refresh_after_s=refresh_after_s,
    )


def quote_figures(
    *, project: str, template: str, run_type: str, refresh_after_s: float | None = None
) -> QuoteFigures | None:
    """P90 AI cost and history size of comparable runs (cached), or None without history."""

    def compute() -> QuoteFigures | None:
        quote = quotes.quote_compute(
            project=project, template=template, run_type=run_type, today=_today()
        )
        return QuoteFigures(quote.ai_cost.p90, quote.runs) if quote else None

    return _cached(
        f"quote:{project}:{template}:{run_type}", compute, refresh_after_s=refresh_after_s
    )


def run_budgets() -> list[RunBudget]:
    return list(RunBudget.objects.order_by("project", "template"))


def budget_for(budgets: list[RunBudget], *, project: str, template: str) -> RunBudget | None:
    scopes = [rules.BudgetScope(b.pk, b.project, b.template) for b in budgets]
    chosen = rules.budget_choose(scopes, project=project, template=template)
    return next((b for b in budgets if chosen and b.pk == chosen.id), None)


def guard_answer(
    progress: RunProgress,
    budgets: list[RunBudget],
    *,
    stored: RunGuard | None = None,
    refresh_after_s: float | None = None,
) -> GuardAnswer:
    """The run's figures now against the budget that applies to it (none: ``ok``, no limit).
    ``stored``: the run's guard, whose P90-multiple limit stays while the budget is the same.
    A finished run has nothing left to expect: no step expectations are read for it.
    ``refresh_after_s``: recompute cached expectations older than that (the guard pass)."""
    budget = budget_for(budgets, project=progress.project, template=progress.template)
    quote = None
    if budget is not None and budget.basis == RunBudget.Basis.P90_MULTIPLE:
        quote = quote_figures(
            project=progress.project,
            template=progress.template,
            run_type=progress.run_type,
            refresh_after_s=refresh_after_s,
        )
    limit = None
    if budget is not None:
        limit = rules.limit_frozen(
            basis=budget.basis,
            same_budget=stored is not None and stored.budget_id == budget.pk,
            stored=stored.limit if stored is not None else None,
            computed=rules.limit_of(
                basis=budget.basis,
                amount=budget.amount,
                multiple=budget.multiple,
                p90=quote.p90 if quote else None,
            ),
        )
    evaluation = rules.evaluate(
        cost_so_far=progress.cost_so_far,
        expected=(
            step_costs_expected(progress.template, refresh_after_s=refresh_after_s)
            if progress.template and not progress.finished
            else {}
        ),
        steps={n: rules.StepDone(s.done, s.spent) for n, s in progress.steps.items()},
        finished=progress.finished,
        limit=limit,
        warn_percent=budget.warn_percent if budget else 100,
    )
    return GuardAnswer(
        run_id=progress.run_id,
        run_pk=progress.pk,
        project=progress.project,
        template=progress.template,
        finished=progress.finished,
        evaluation=evaluation,
        budget=budget,
        quote=quote,
        computed_at=timezone.now(),
    )


def run_guard(run_id: str) -> GuardAnswer | None:
    """Live figures of the run with this client id; None when the tenant has no such run."""
    progress = run_progress(run_id)
    if progress is None:
        return None
    budgets = run_budgets()
    stored = RunGuard.objects.filter(run_id=progress.pk).first() if budgets else None
    return guard_answer(progress, budgets, stored=stored)


HAS_BUDGETS_TTL_S = 30


def has_budgets_key() -> str:
    return f"guard:{connection.schema_name}:has-budgets"


def run_budgets_exist() -> bool:
    """Whether the tenant has any run budget (kept ``HAS_BUDGETS_TTL_S`` in the cache; the
    services forget it when a budget is created or removed): ingest asks it for every batch."""
    try:
        found = cache.get(has_budgets_key())
    except Exception:
        found = None
    if found is not None:
        return bool(found)
    exists = RunBudget.objects.exists()
    with suppress(Exception):
        cache.set(has_budgets_key(), int(exists), HAS_BUDGETS_TTL_S)
    return exists


def run_guards_stored(run_ids: Iterable[str]) -> dict[str, RunGuard]:
    """The stored guard of each of these runs that has one (client run id -> guard)."""
    guards = RunGuard.objects.filter(run__run_id__in=list(run_ids)).select_related("run")
    return {g.run.run_id: g for g in guards}


def run_guards_open(*, limit: int = 200) -> list[RunGuard]:
    """Guards of runs not finished yet: stop first, then warn, then ok (the limit cuts the
    least urgent), each by projected cost, highest first."""
    severity = Case(
        *(When(state=state, then=Value(rank)) for rank, state in enumerate(rules.STATES)),
        default=Value(-1),
    )
    return list(
        RunGuard.objects.filter(finished=False)
        .select_related("run", "run__project", "budget")
        .order_by(severity.desc(), "-projected_cost", "pk")[:limit]
    )


@dataclass(frozen=True)
class Reservation:
    runs: int  # active runs with a stored guard
    amount: Decimal  # their expected remaining AI cost (USD, unrounded)


def reservation(*, project: str = "") -> Reservation:
    """What active guarded runs are still expected to spend: reserved against the month's
    budget (the tenant's, or ``project``'s)."""
    guards = RunGuard.objects.filter(finished=False)
    if project:
        guards = guards.filter(run__project__slug=project)
    row = guards.aggregate(n=Count("pk"), amount=Sum("expected_remaining"))
    return Reservation(runs=row["n"], amount=row["amount"] or ZERO)


@dataclass(frozen=True)
class ReservedBudget:
    """A budget's status beside what its active guarded runs still expect to spend."""

    status: BudgetStatus
    reserved: Reservation
    # The month-end forecast (or, without one, spend so far) plus the reservation, each in
    # cents as the pages show them beside it, so the three read as a sum (USD).
    with_reserved: Decimal
    over: bool  # ``with_reserved`` reaches the budget's amount


def budgets_reserved(
    statuses: list[BudgetStatus], known: Mapping[str, Reservation] | None = None
) -> list[ReservedBudget]:
    """The stored forecast stays as it is; the reservation is added beside it. ``known``: the
    reservations the caller has read already, by project ("" the tenant's)."""
    known = known or {}
    out = []
    for status in statuses:
        project = status.budget.project
        held = known[project] if project in known else reservation(project=project)
        base = status.forecast_month_end if status.forecast_month_end is not None else status.spent
        total = quantize_cents(base) + quantize_cents(held.amount)
        out.append(ReservedBudget(status, held, total, total >= status.budget.amount))
    return out
