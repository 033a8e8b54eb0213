"""Quotes from a tenant's real run history: comparable finished runs, the fallback ladder, the
steps' expected cost, allocated infrastructure in the total, the cache's freshness, budget
headroom."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import services
from billing.operator.models import AllocationRun
from billing.selectors.quotes import (
    Quote,
    quote_budget,
    quote_compute,
    quotes_table,
    step_expectations,
)
from billing.tests.quote_history import PastRun, history_store
from factory_portal.periods import local_date
from factory_portal.tenants.connection import connection_zone
from usage.models import Run, RunAllocatedCost

pytestmark = pytest.mark.django_db


def cents(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def spa_history(count: int = 24, project: str = "web", prefix: str = "r") -> list[PastRun]:
    """``count`` finished runs over the last days: plan costs 0.10, build 0.37 * n (a third of
    them failed: failures count)."""
    start = timezone.now() - timedelta(days=5)
    return [
        PastRun(
            f"{prefix}-{n}",
            start + timedelta(hours=n),
            (("plan", Decimal("0.10")), ("build", Decimal("0.37") * n)),
            project=project,
            status="Failed" if n % 3 == 0 else "Succeeded",
            minutes=5 + n,
        )
        for n in range(1, count + 1)
    ]


def expected_spread(runs: list[PastRun]) -> tuple[Decimal, Decimal]:
    costs = [float(r.ai_cost) for r in runs]
    return cents(np.percentile(costs, 50)), cents(np.percentile(costs, 90))


def test_quote_of_comparable_finished_runs(alpha):
    runs = spa_history()
    others = [  # not comparable: active, another template, finished 40 days ago
        PastRun(
            "active",
            timezone.now() - timedelta(hours=1),
            (("plan", Decimal(50)),),
            status="Running",
        ),
        PastRun(
            "api-1", timezone.now() - timedelta(days=2), (("plan", Decimal(50)),), template="api"
        ),
        PastRun("old", timezone.now() - timedelta(days=40), (("plan", Decimal(50)),)),
    ]
    history_store(alpha, runs + others)
    with schema_context(alpha.schema):
        quote = quote_compute(project="web", template="spa", run_type="feature")
        assert quote is not None
        assert (quote.scope, quote.runs) == ("project", len(runs))
        assert (quote.ai_cost.p50, quote.ai_cost.p90) == expected_spread(runs)
        assert quote.total_cost == quote.ai_cost  # nothing allocated yet
        minutes = sorted((5 + n) * 60_000 for n in range(1, len(runs) + 1))
        assert quote.duration_ms.p50 == round(np.percentile(minutes, 50))
        today = local_date(timezone.now(), connection_zone())
        assert (quote.end, (quote.end - quote.start).days) == (today, 29)
        # the steps: mean AI cost of each step, by expected cost
        steps = {s.step_name: s for s in quote.steps}
        mean_build = sum(Decimal("0.37") * n for n in range(1, len(runs) + 1)) / len(runs)
        assert steps["build"].expected_cost == mean_build.quantize(Decimal("1E-10"))
        # steps are read from the daily step rollup less the active run (its $50 so far is not
        # a finished run's cost), none of another template; every finished run had both steps
        plan = Decimal("0.10").quantize(Decimal("1E-10"))
        assert (steps["plan"].expected_cost, steps["plan"].runs) == (plan, len(runs))
        assert {s.share for s in quote.steps} == {Decimal(1)}
        assert [s.step_name for s in quote.steps] == sorted(
            steps, key=lambda name: -steps[name].expected_cost
        )
        assert step_expectations(template="spa") == steps
        # reproducible: the same from the cache and recomputed from the same history
        assert quote_compute(project="web", template="spa", run_type="feature") == quote
        cache.clear()
        assert quote_compute(project="web", template="spa", run_type="feature") == quote


def test_ladder_falls_back_when_the_project_has_few_runs(alpha):
    history_store(alpha, spa_history() + spa_history(count=3, project="shop", prefix="s"))
    with schema_context(alpha.schema):
        shop = quote_compute(project="shop", template="spa", run_type="feature")
        assert (shop.scope, shop.runs) == ("template_run_type", 27)
        fix = quote_compute(project="web", template="spa", run_type="fix")
        assert (fix.scope, fix.runs) == ("template", 27)
        assert quote_compute(project="web", template="nothing", run_type="feature") is None


def test_expected_steps_scale_the_quote(alpha):
    runs = spa_history()
    history_store(alpha, runs)
    with schema_context(alpha.schema):
        whole = quote_compute(project="web", template="spa", run_type="feature")
        plan_only = quote_compute(
            project="web", template="spa", run_type="feature", steps=["plan", "plan"]
        )
        assert [s.step_name for s in plan_only.steps] == ["plan"]
        mean = sum(r.ai_cost for r in runs) / len(runs)
        assert plan_only.ai_cost.p90 < whole.ai_cost.p90
        assert abs(plan_only.ai_cost.p90 - whole.ai_cost.p90 * Decimal("0.1") / mean) <= Decimal(
            "0.01"
        )
        unknown = quote_compute(project="web", template="spa", run_type="feature", steps=["x"])
        assert unknown.steps[0].runs == 0


def test_new_history_is_seen_at_once_and_allocation_enters_the_total(alpha):
    runs = spa_history()
    history_store(alpha, runs)
    with schema_context(alpha.schema):
        before = quote_compute(project="web", template="spa", run_type="feature")
    more = [
        PastRun(f"new-{n}", timezone.now() - timedelta(days=1), (("build", Decimal(40)),))
        for n in range(10)
    ]
    history_store(alpha, more)
    with schema_context(alpha.schema):
        after = quote_compute(project="web", template="spa", run_type="feature")
        assert after.runs == before.runs + 10
        assert after.ai_cost.p90 == expected_spread(runs + more)[1]
        # allocation (an allocation run of the month) writes each run's share
        month = local_date(timezone.now(), connection_zone()).replace(day=1)
        AllocationRun.objects.create(period=month, inputs_digest="x", computed_at=timezone.now())
        RunAllocatedCost.objects.bulk_create(
            RunAllocatedCost(run=run, month=month, amount=Decimal("2.00"))
            for run in Run.objects.filter(template_recipe_id="spa")
        )
        allocated = quote_compute(project="web", template="spa", run_type="feature")
        assert allocated.total_cost.p90 == allocated.ai_cost.p90 + 2


def test_budget_headroom_after_the_p90(alpha):
    history_store(alpha, spa_history())
    with schema_context(alpha.schema):
        quote = quote_compute(project="web", template="spa", run_type="feature")
        assert isinstance(quote, Quote) and quote_budget(quote) is None
        services.budget_set(amount=Decimal("500.00"), project="")
        tenant_wide = quote_budget(quote)
        assert tenant_wide.project == ""
        assert (
            tenant_wide.headroom_after_p90 == Decimal(500) - tenant_wide.spent - quote.ai_cost.p90
        )
        services.budget_set(amount=Decimal("80.00"), project="web")
        project = quote_budget(quote)
        assert (project.project, project.amount) == ("web", Decimal("80.00"))
        assert project.headroom_after_p90 == Decimal(80) - project.spent - quote.ai_cost.p90


def test_quotes_table_lists_templates_by_run_type(alpha):
    history_store(
        alpha,
        [
            *spa_history(),
            PastRun(
                "api-1",
                timezone.now() - timedelta(days=2),
                (("plan", Decimal(5)),),
                template="api",
                run_type="fix",
            ),
            PastRun(
                "api-2",
                timezone.now() - timedelta(days=2),
                (("plan", Decimal(7)),),
                template="api",
                run_type="docs",
            ),
        ],
    )
    with schema_context(alpha.schema):
        tables = {t.template: t for t in quotes_table()}
        assert set(tables) == {"api", "spa"}
        assert [(r.run_type, r.quote.runs) for r in tables["spa"].rows] == [("feature", 24)]
        api = {r.run_type: r.quote for r in tables["api"].rows}
        assert list(api) == ["docs", "fix", None]  # several run types: and every run type
        assert (api["fix"].ai_cost.p90, api[None].runs) == (Decimal("5.00"), 2)
        assert api[None].ai_cost.p90 == Decimal("6.80")  # 5 + 0.9 * (7 - 5)


def test_calls_of_active_runs_keep_the_cached_history(alpha, django_assert_max_num_queries):
    history_store(alpha, spa_history())
    with schema_context(alpha.schema):
        first = quote_compute(project="web", template="spa", run_type="feature")
    history_store(
        alpha,
        [PastRun("live", timezone.now(), (("plan", Decimal(9)),), status="Running")],
    )
    # schema and zone (2), fingerprint (3), steps (rollup less active runs, finished runs)
    with schema_context(alpha.schema), django_assert_max_num_queries(7):
        again = quote_compute(project="web", template="spa", run_type="feature")
    assert (again.runs, again.ai_cost) == (first.runs, first.ai_cost)
    # the steps are read fresh, from finished runs: the live run's $9 call is not in them
    assert again.steps == first.steps
