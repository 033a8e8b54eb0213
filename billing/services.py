"""Writes of per-tenant billing data (current tenant schema): budgets, cost forecasts and
dismissed savings recommendations.

Forecasts are refreshed by the beat (every tenant, every 6 hours), after new usage is stored
(``forecasts_refresh_schedule``, debounced per tenant like alert evaluation) and on demand when a
page or the API asks for one that does not exist yet (``forecast_ensure``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.domain import guard as guard_rules
from billing.domain.forecasting import (
    ForecastDay,
    Interval,
    choose_method,
    country_of_timezone,
    daily_series,
    forecast,
)
from billing.models import Budget, CostForecast, RecommendationDismissal, RunBudget, RunGuard
from billing.selectors import guard as guard_selectors
from billing.selectors.guard import GuardAnswer
from billing.signals import run_guard_cleared, run_guard_crossed
from factory_portal.broker import enqueue
from factory_portal.money import quantize_cents
from factory_portal.periods import month_last_day
from factory_portal.tenants.connection import connection_zone
from usage import selectors as usage_selectors
from usage.selectors import run_progress
from usage.services.allocations import run_allocations_replace

HORIZON = 90
ZERO = Decimal(0)
# Two years: each public holiday's effect is then estimated from two occurrences.
HISTORY_DAYS = 730
# At most one refresh per tenant per 30 s of ingest; it runs at the end of the window, so a
# back-fill gets its forecast within about a minute.
FORECAST_DEBOUNCE_S = 30

# Budget.amount holds 12 digits before the point.
BUDGET_LIMIT = Decimal(10) ** 12


def _interval_json(interval: Interval) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(interval).items()}


def forecast_refresh(*, today: date, project: str = "") -> CostForecast | None:
    """Forecast daily AI cost from ``today`` (history up to yesterday) for the tenant or one
    project, and store it as the latest forecast. None when there is no usage yet."""
    first = usage_selectors.first_usage_day()
    if first is None or first >= today:
        return None
    end = today - timedelta(days=1)
    start = max(first, end - timedelta(days=HISTORY_DAYS - 1))
    history = daily_series(
        usage_selectors.daily_token_cost(start=start, end=end, project=project), start, end
    )
    # The holidays of the tenant's country shape its cost (none for a tenant on UTC).
    country = country_of_timezone(str(connection_zone()))
    method, backtests = choose_method(history, country=country)
    result = forecast(history, HORIZON, method=method, scored=backtests, country=country)
    method = result.method  # a method that cannot be fitted falls back to a simpler one
    rest_of_month = month_last_day(today).day - today.day + 1
    daily = [
        ForecastDay.of(
            result.start + timedelta(days=offset), result.day(offset), result.total(offset + 1)
        ).to_json()
        for offset in range(result.horizon)
    ]
    values = {
        "computed_at": timezone.now(),
        "method": method,
        "start": result.start,
        "daily": daily,
        "month_end": _interval_json(result.total(rest_of_month)),
        "next_30": _interval_json(result.total(30)),
        "next_90": _interval_json(result.total(90)),
        "backtest": {
            m: {
                "mae": round(b.mae, 4),
                "mase": round(b.mase, 4),
                "smape": round(b.smape, 4),
                "coverage80": round(b.coverage80, 4),
                "coverage95": round(b.coverage95, 4),
            }
            for m, b in backtests.items()
        },
    }
    stored, _ = CostForecast.objects.update_or_create(project=project, defaults=values)
    return stored


def forecasts_refresh(*, today: date) -> int:
    """The tenant's forecast and every project's; returns how many were stored."""
    scopes = ["", *usage_selectors.project_slugs()]
    return sum(forecast_refresh(today=today, project=p) is not None for p in scopes)


def forecast_ensure(*, today: date, project: str = "") -> CostForecast | None:
    """The stored forecast of the tenant or ``project`` from ``today`` (the tenant's day);
    computed now when there is none or it starts on an earlier day (one series of at most
    ``HISTORY_DAYS`` days: a fraction of a second). None without usage."""
    stored = CostForecast.objects.filter(project=project).first()
    if stored is not None and stored.start == today:
        return stored
    return forecast_refresh(today=today, project=project) or stored


def forecasts_refresh_schedule() -> None:
    """After commit, enqueue the refresh of the current tenant's forecasts (debounced). Called
    by ``billing.receivers`` inside the ingest transaction; a broker that is down only delays
    the refresh until the beat's."""
    schema = connection.schema_name

    def later() -> None:
        from billing.tasks import forecasts_refresh_tenant

        try:
            first = cache.add(f"forecasts:usage:{schema}", 1, timeout=FORECAST_DEBOUNCE_S - 1)
        except Exception:  # no cache, no debounce: the broker back-off still bounds the cost
            first = True
        if first:
            enqueue(forecasts_refresh_tenant, schema=schema, countdown=FORECAST_DEBOUNCE_S)

    transaction.on_commit(later)


def budget_set(
    *,
    amount: Decimal,
    project: str = "",
    thresholds: list[int] | None = None,
    basis: str = Budget.Basis.AI,
) -> Budget:
    """Create or change the monthly budget of the tenant (``project`` empty) or a project, on
    AI cost (``basis`` ``ai``) or on total cost (``total``: AI plus allocated infrastructure)."""
    if basis not in Budget.Basis.values:
        raise ValidationError(
            f"Unknown budget basis {str(basis)[:20]!r}: use {' or '.join(Budget.Basis.values)}."
        )
    if not amount.is_finite() or amount <= 0:
        raise ValidationError("A budget must be a positive amount.")
    if amount >= BUDGET_LIMIT:
        raise ValidationError(f"A budget is below {BUDGET_LIMIT:,} USD a month.")
    thresholds = sorted(set(thresholds or [50, 80, 100]))
    if any(t <= 0 or t > 1000 for t in thresholds):
        raise ValidationError("Thresholds are percentages between 1 and 1000.")
    if project and project not in usage_selectors.project_slugs():
        raise ValidationError(f"No project {project!r} in this tenant.")
    with transaction.atomic():
        budget, _ = Budget.objects.update_or_create(
            project=project,
            defaults={
                "amount": quantize_cents(amount),
                "thresholds": thresholds,
                "basis": basis,
            },
        )
    return budget


def budget_change(
    *,
    budget: Budget,
    amount: Decimal,
    project: str,
    thresholds: list[int] | None,
    basis: str | None = None,
) -> Budget:
    """Change a budget's amount, thresholds or scope. A budget moved to another scope is
    replaced: the new scope's budget is set and this one deleted."""
    with transaction.atomic():
        changed = budget_set(
            amount=amount, project=project, thresholds=thresholds, basis=basis or budget.basis
        )
        if changed.pk != budget.pk:
            budget_delete(budget=budget)
    return changed


def budget_delete(*, budget: Budget) -> None:
    """Remove a budget: its thresholds are no longer watched."""
    budget.delete()


def run_allocations_store(*, month: date, run_infra: Mapping[str, Decimal]) -> int:
    """Keep each run's share of the month's allocated infrastructure (a cost summary's
    ``run_infra``) where run history and the runs API read it (total cost per run)."""
    return run_allocations_replace(month=month, amounts=run_infra)


# Savings recommendations

RECOMMENDATION_KEY = re.compile(r"(caching|model)-[0-9a-f]{16}")


def recommendation_dismiss(*, key: str, by: str, note: str = "") -> RecommendationDismissal:
    """Hide the savings recommendation ``key`` (``billing.domain.savings.recommendation_key``)
    from the tenant's list; dismissing it again keeps the first dismissal. ValidationError when
    ``key`` is not a recommendation key."""
    if not RECOMMENDATION_KEY.fullmatch(key):
        raise ValidationError(
            f"{key[:80]!r} is not a recommendation key (caching-<16 hex> or model-<16 hex>)."
        )
    dismissal, _ = RecommendationDismissal.objects.get_or_create(
        key=key,
        defaults={"dismissed_by": by[:254], "dismissed_at": timezone.now(), "note": note[:500]},
    )
    return dismissal


def recommendation_restore(*, key: str) -> bool:
    """Undo a dismissal: the recommendation is listed again (when it still holds). Whether
    there was one (never for text that is not a recommendation key)."""
    if not RECOMMENDATION_KEY.fullmatch(key):
        return False
    deleted, _ = RecommendationDismissal.objects.filter(key=key).delete()
    return bool(deleted)


# Run guard (billing.domain.guard has the rules)

# Re-evaluation after ingest starts at most this long after the first batch of a window: every
# batch committed in the window is then visible to it (each schedules after its own commit).
RUN_GUARD_DEBOUNCE_S = 1
RUN_GUARD_MAX_RUNS = 2000  # active runs evaluated per pass, oldest first
MAX_MULTIPLE = Decimal(100)
SCOPE_TAKEN = "This project and template already have a run budget."
GUARD_PLACES = Decimal("1E-10")
RUN_GUARD_FINISHED_SWEEP_S = (
    300  # the sweep also reads runs finished this recently  # the stored figures' places
)


def run_budget_set(
    *,
    project: str = "",
    template: str = "",
    basis: str = RunBudget.Basis.AMOUNT,
    amount: Decimal | None = None,
    multiple: Decimal | None = None,
    warn_percent: int = 80,
    budget: RunBudget | None = None,
) -> RunBudget:
    """Create a run budget, or change ``budget``: a USD ``amount`` per run, or a ``multiple`` of
    the run's P90 AI quote. One budget per (project, template) scope."""
    if basis not in RunBudget.Basis.values:
        raise ValidationError(
            f"Unknown limit basis {str(basis)[:20]!r}: use {' or '.join(RunBudget.Basis.values)}.",
            code="basis",
        )
    if basis == RunBudget.Basis.AMOUNT:
        if amount is None or amount <= 0:
            raise ValidationError(
                "A run budget on an amount needs a positive amount (USD).", code="amount"
            )
        amount, multiple = quantize_cents(amount), None
    else:
        if multiple is None or not 0 < multiple <= MAX_MULTIPLE:
            raise ValidationError(
                f"A run budget on the P90 quote needs a multiple above 0, at most {MAX_MULTIPLE}.",
                code="multiple",
            )
        amount = None
    if not 1 <= warn_percent <= 100:
        raise ValidationError(
            "The warn level is a percentage of the limit, 1 to 100.", code="warn_percent"
        )
    if project and project not in usage_selectors.project_slugs():
        raise ValidationError(f"No project {project!r} in this tenant.", code="project")
    clash = RunBudget.objects.filter(project=project, template=template)
    if budget is not None:
        clash = clash.exclude(pk=budget.pk)
    if clash.exists():
        raise ValidationError(SCOPE_TAKEN, code="template")
    values = {
        "project": project,
        "template": template,
        "basis": basis,
        "amount": amount,
        "multiple": multiple,
        "warn_percent": warn_percent,
    }
    try:
        with transaction.atomic():
            if budget is None:
                budget = RunBudget.objects.create(**values)
            else:
                for name, value in values.items():
                    setattr(budget, name, value)
                budget.save()
                # A changed budget judges its active runs afresh: their frozen limits go.
                RunGuard.objects.filter(budget=budget, finished=False).update(limit=None)
    except IntegrityError as exc:  # the same scope saved concurrently: the unique constraint
        raise ValidationError(SCOPE_TAKEN, code="template") from exc
    _budgets_changed()
    return budget


def _budgets_changed() -> None:
    """Forget the cached "has run budgets" answer (now and after commit) and schedule a pass."""
    key = guard_selectors.has_budgets_key()

    def forget() -> None:
        with suppress(Exception):
            cache.delete(key)

    forget()
    transaction.on_commit(forget)
    run_guards_schedule(force=True)


def run_budget_delete(*, budget: RunBudget) -> None:
    """Remove a run budget; the runs it guarded fall to the next matching budget, or to none."""
    budget.delete()
    _budgets_changed()


def _same_figures(guard: RunGuard, answer: GuardAnswer) -> bool:
    ev = answer.evaluation
    budget_id = answer.budget.pk if answer.budget else None
    return (
        guard.budget_id == budget_id
        and guard.state == ev.state
        and guard.finished == answer.finished
        and guard.limit == ev.limit
        and (guard.cost_so_far, guard.expected_remaining, guard.projected_cost)
        == tuple(
            v.quantize(GUARD_PLACES)
            for v in (ev.cost_so_far, ev.expected_remaining, ev.projected_total)
        )
    )


def run_guard_store(answer: GuardAnswer, current: RunGuard | None = None) -> RunGuard | None:
    """Store a run's figures; a rise of its state is a crossing (``run_guard_crossed``, once),
    a fall or the run's end clears it (``run_guard_cleared``). None for a run without budget that
    was never guarded. ``current``: the guard as read before the evaluation; when its figures and
    state are the ones evaluated, nothing is written."""
    if current is not None and _same_figures(current, answer):
        return current
    ev = answer.evaluation
    with transaction.atomic():
        if answer.budget is None and not RunGuard.objects.filter(run_id=answer.run_pk).exists():
            return None
        now = timezone.now()
        RunGuard.objects.bulk_create(
            [
                RunGuard(
                    run_id=answer.run_pk,
                    cost_so_far=ZERO,
                    expected_remaining=ZERO,
                    projected_cost=ZERO,
                    updated_at=now,
                )
            ],
            ignore_conflicts=True,
        )
        guard = RunGuard.objects.select_for_update().get(run_id=answer.run_pk)
        previous, was_finished = guard.state, guard.finished
        guard.budget = answer.budget
        guard.state = ev.state
        guard.cost_so_far = ev.cost_so_far
        guard.expected_remaining = ev.expected_remaining
        guard.projected_cost = ev.projected_total
        guard.limit = ev.limit
        guard.finished = answer.finished
        guard.updated_at = now
        rose = guard_rules.crossed(previous, ev.state)
        if rose:
            guard.crossed_at = now
        guard.save()
        figures = {
            "run_id": answer.run_id,
            "project": answer.project,
            "template": answer.template,
            "state": ev.state,
            "previous": previous,
            "cost_so_far": ev.cost_so_far,
            "projected": ev.projected_total,
            "limit": ev.limit,
        }
        ended = answer.finished and not was_finished
        if rose:
            run_guard_crossed.send(sender=RunGuard, crossed_at=now, **figures)
        if ended or (not rose and guard_rules.crossed(ev.state, previous)):
            run_guard_cleared.send(
                sender=RunGuard, run_id=answer.run_id, state=ev.state, finished=ended
            )
    return guard


def run_guards_refresh(*, run_pks: Iterable[int] | None = None) -> int:
    """Re-evaluate ``run_pks``, or every active run and every guard still open (a run that
    finished gets its final figures); returns how many guards it keeps (stored or unchanged).

    Only runs a budget applies to, or that have a guard, are evaluated: the scopes of the runs
    are read first (one query), their progress and expectations only for those. A guard already
    final (its run finished) is left as it is."""
    budgets = guard_selectors.run_budgets()
    if run_pks is None:
        open_guards = list(RunGuard.objects.filter(finished=False).values_list("run_id", flat=True))
        if not budgets and not open_guards:
            return 0
        active, ended = [], []
        if budgets:
            active = run_progress.active_run_pks(limit=RUN_GUARD_MAX_RUNS)
            # Runs that finished between two passes and whose own final pass was lost (a broker
            # down): the ones with a budget and no guard get their final figures here.
            ended = run_progress.finished_run_pks(
                since=timezone.now() - timedelta(seconds=RUN_GUARD_FINISHED_SWEEP_S),
                limit=RUN_GUARD_MAX_RUNS,
            )
        run_pks = {*active, *ended, *open_guards}
    pks = set(run_pks)
    if not pks:
        return 0
    guards = {g.run_id: g for g in RunGuard.objects.filter(run_id__in=pks)}
    scopes = run_progress.run_scopes(pks)
    wanted = [
        pk
        for pk, (project, template) in scopes.items()
        if (pk in guards and not guards[pk].finished)
        or (
            pk not in guards
            and guard_selectors.budget_for(budgets, project=project, template=template)
        )
    ]
    kept = 0
    for progress in run_progress.runs_progress(wanted):
        # Expectations older than half their cache life are recomputed here, off the request
        # path: a guard answer then finds them warm.
        current = guards.get(progress.pk)
        answer = guard_selectors.guard_answer(
            progress,
            budgets,
            stored=current,
            refresh_after_s=guard_selectors.EXPECTATIONS_TTL_S / 2,
        )
        kept += run_guard_store(answer, current) is not None
    return kept


def run_guards_schedule(*, force: bool = False) -> None:
    """After commit, enqueue the current tenant's run guard pass (debounced per
    ``RUN_GUARD_DEBOUNCE_S``), unless the tenant has no run budget (``force``: a budget was just
    changed or removed; open guards are then judged again). Called by ``billing.receivers``
    inside the ingest transaction; a broker that is down only delays it until the beat's sweep
    (every minute)."""
    if not force and not guard_selectors.run_budgets_exist():
        return
    schema = connection.schema_name

    def later() -> None:
        from billing.tasks import run_guards_refresh_tenant

        try:
            first = cache.add(f"guard:usage:{schema}", 1, timeout=RUN_GUARD_DEBOUNCE_S)
        except Exception:  # no cache, no debounce
            first = True
        if first:
            enqueue(run_guards_refresh_tenant, schema=schema, countdown=RUN_GUARD_DEBOUNCE_S)

    transaction.on_commit(later)


def run_guards_finish(*, run_pks: list[int]) -> None:
    """After commit, the final evaluation of runs that just finished (no debounce: each batch of
    finished runs gets its own pass, even one that finished between two passes and was never
    guarded), when the tenant has run budgets at all."""
    if not run_pks or not guard_selectors.run_budgets_exist():
        return
    schema = connection.schema_name
    pks = sorted(run_pks)

    def later() -> None:
        from billing.tasks import run_guards_finish_tenant

        enqueue(run_guards_finish_tenant, schema=schema, args=(pks,))

    transaction.on_commit(later)
