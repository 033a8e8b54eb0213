"""Stored forecasts and budget status over a tenant's real (ingested) usage."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from billing.models import Budget, CostForecast
from billing.selectors.budgets import AT_RISK, EXCEEDED, OK, budget_status, budgets_status
from billing.selectors.periods import month_cost
from billing.services import budget_set, forecast_refresh, forecasts_refresh
from billing.tasks import forecasts_refresh_tenant
from tests.support import llm_event_in
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 16)


def _daily_spend(tenant, *, days: int, per_day: str, project: str = "checkout"):
    start = TODAY - timedelta(days=days)
    events = [
        llm_event_in(
            f"d-{project}-{n}",
            datetime(d.year, d.month, d.day, 12, tzinfo=UTC),
            project=project,
            cost=Decimal(per_day),
        )
        for n, d in enumerate(start + timedelta(days=i) for i in range(days))
    ]
    with schema_context(tenant.schema):
        events_ingest(events=events, pricer=pricer_for(tenant.tenant))


def test_forecast_is_stored_with_intervals_for_tenant_and_projects(alpha):
    _daily_spend(alpha, days=60, per_day="10")
    _daily_spend(alpha, days=60, per_day="5", project="search")
    with schema_context(alpha.schema):
        assert forecasts_refresh(today=TODAY) == 3  # tenant, checkout, search
        tenant = CostForecast.objects.get(project="")
        assert tenant.start == TODAY
        assert len(tenant.daily) == 90
        assert Decimal(tenant.daily[0][1]) == Decimal("15.00")
        # 15 days left in November at $15 a day
        assert Decimal(tenant.month_end["mean"]) == Decimal("225.00")
        assert Decimal(tenant.next_30["lo95"]) <= Decimal(tenant.next_30["mean"])
        assert Decimal(tenant.daily[29][6]) == Decimal(tenant.next_30["mean"])
        assert CostForecast.objects.get(project="search").daily[0][1] == "5.00"


def test_no_usage_no_forecast(alpha):
    with schema_context(alpha.schema):
        assert forecast_refresh(today=TODAY) is None


def test_budget_status_on_actual_and_forecast(alpha):
    _daily_spend(alpha, days=45, per_day="10")  # $150 spent in November up to the 15th
    with schema_context(alpha.schema):
        forecasts_refresh(today=TODAY)
        roomy = budget_status(budget_set(amount=Decimal(1000)), tenant=alpha.tenant, today=TODAY)
        assert (roomy.status, roomy.spent) == (OK, Decimal(150))
        assert roomy.forecast_month_end == Decimal("300.00")
        assert roomy.actual_thresholds_crossed == [] and roomy.forecast_thresholds_crossed == []
        tight = budget_status(budget_set(amount=Decimal(200)), tenant=alpha.tenant, today=TODAY)
        assert tight.status == AT_RISK
        assert tight.actual_thresholds_crossed == [50]
        assert tight.forecast_thresholds_crossed == [50, 80, 100]
        assert tight.crossing_expected == date(2026, 11, 20)  # 150 + 5 x 10
        assert tight.crossing_lo80 <= tight.crossing_expected <= tight.crossing_hi80
        gone = budget_status(budget_set(amount=Decimal(100)), tenant=alpha.tenant, today=TODAY)
        assert gone.status == EXCEEDED


def test_budgets_status_is_each_budgets_status_whatever_the_caller_passes(alpha):
    _daily_spend(alpha, days=45, per_day="10")
    _daily_spend(alpha, days=45, per_day="4", project="search")
    now = datetime(2026, 11, 16, 12, tzinfo=UTC)  # TODAY in the tenant's time zone
    with schema_context(alpha.schema):
        forecasts_refresh(today=TODAY)
        budget_set(amount=Decimal(300))
        budget_set(amount=Decimal(100), project="checkout", basis=Budget.Basis.TOTAL)
        budget_set(amount=Decimal(50), project="search")
        each = [
            budget_status(b, tenant=alpha.tenant, today=TODAY)
            for b in Budget.objects.order_by("project")
        ]
        assert [s.budget.project for s in each] == ["", "checkout", "search"]
        assert all(s.forecast_month_end is not None for s in each)
        assert budgets_status(tenant=alpha.tenant, now=now) == each
        # The caller's month cost and forecast are those read again otherwise.
        tenant_forecast = CostForecast.objects.get(project="")
        month = month_cost(tenant=alpha.tenant, month=TODAY)
        given = budgets_status(
            tenant=alpha.tenant, now=now, month_costs=month, forecasts=[tenant_forecast, None]
        )
        assert given == each
        # Another month's cost is not used; a forecast that does not start today is none.
        october = month_cost(tenant=alpha.tenant, month=date(2026, 10, 1))
        assert budgets_status(tenant=alpha.tenant, now=now, month_costs=october) == each
        CostForecast.objects.filter(project="").update(start=TODAY - timedelta(days=1))
        tenant_forecast.start = TODAY - timedelta(days=1)
        stale = budgets_status(tenant=alpha.tenant, now=now, forecasts=[tenant_forecast])
        assert stale[0] == budget_status(stale[0].budget, tenant=alpha.tenant, today=TODAY)
        assert stale[0].forecast_month_end is None and stale[1:] == each[1:]


def test_budgets_are_validated(alpha):
    from django.core.exceptions import ValidationError

    with schema_context(alpha.schema):
        with pytest.raises(ValidationError, match="positive"):
            budget_set(amount=Decimal(0))
        with pytest.raises(ValidationError, match="No project"):
            budget_set(amount=Decimal(10), project="nope")
        with pytest.raises(ValidationError, match="between 1 and 1000"):
            budget_set(amount=Decimal(10), thresholds=[0])


def test_refresh_task_runs_in_the_tenant_schema(alpha):
    _daily_spend(alpha, days=30, per_day="2")
    with schema_context(alpha.schema):
        assert forecasts_refresh_tenant.apply().get() == 2
        assert CostForecast.objects.filter(project="").exists()


def test_backtest_command_on_a_csv(tmp_path):
    path = tmp_path / "series.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["d", "v"])
        for i in range(120):
            writer.writerow([str(date(2026, 1, 1) + timedelta(days=i)), 100 + (i % 7) * 5])
    out = io.StringIO()
    call_command(
        "forecast_backtest", "--csv", str(path), "--date-col", "d", "--value-col", "v", stdout=out
    )
    text = out.getvalue()
    assert "seasonal_naive" in text and "ets" in text and "MASE" in text
    with pytest.raises(CommandError, match="no column 'x'"):
        call_command(
            "forecast_backtest", "--csv", str(path), "--date-col", "x", stdout=io.StringIO()
        )


def test_backtest_command_on_tenants(alpha):
    _daily_spend(alpha, days=80, per_day="3")
    out = io.StringIO()
    call_command("forecast_backtest", "--tenant", "alpha", stdout=out)
    assert "alpha/checkout" in out.getvalue()
