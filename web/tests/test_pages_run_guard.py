"""The run guard on the pages: run budgets (admins add and delete; finance reads), the run page's
guard tile, the active runs page's projected cost and over-budget flag, and the reservation of
active runs beside the forecast (budgets page and overview). Another tenant sees none of it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing import services
from billing.models import RunBudget
from billing.tests.guard_data import TEMPLATE, history_make, live_run
from tests.support import logged_in_client, response_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def over_budget(alpha):  # type: ignore[no-untyped-def]
    """live-1: $4 projected against $3 (stop); a tenant budget of $100 a month."""
    with schema_context(alpha.schema):
        history_make()
        live_run()
        services.run_budget_set(template=TEMPLATE, amount=Decimal(3))
        services.budget_set(amount=Decimal(100))
        services.run_guards_refresh()
    return alpha


def test_run_budgets_page_adds_and_deletes(alpha, people) -> None:  # type: ignore[no-untyped-def]
    admin = people["admin"]
    empty = admin.get("/budgets/runs/")
    assert empty.status_code == 200 and "No run budgets yet" in response_text(empty)
    added = admin.post(
        "/budgets/runs/",
        {"project": "", "template": "spa", "basis": "p90_multiple", "multiple": "1.5",
         "warn_percent": "80"},
    )  # fmt: skip
    assert added.status_code == 302
    page = response_text(admin.get("/budgets/runs/"))
    assert "Template spa" in page and "1.50 times the P90 quote" in page
    refused = admin.post("/budgets/runs/", {"template": "x", "basis": "amount", "warn_percent": 80})
    assert refused.status_code == 400 and "positive amount" in response_text(refused)
    finance = people["finance"]
    assert "Add a run budget" not in response_text(finance.get("/budgets/runs/"))
    assert finance.post("/budgets/runs/", {"template": "y"}).status_code == 403
    with schema_context(alpha.schema):
        pk = RunBudget.objects.get().pk
    assert finance.post(f"/budgets/runs/{pk}/delete/").status_code == 403
    assert admin.post(f"/budgets/runs/{pk}/delete/").status_code == 302
    with schema_context(alpha.schema):
        assert not RunBudget.objects.exists()


def test_guard_shows_on_run_and_active_pages(over_budget, people) -> None:  # type: ignore[no-untyped-def]
    member = people["member"]
    run_page = response_text(member.get("/runs/live-1/"))
    assert "Run budget" in run_page and "guard-stop" in run_page
    assert "$4.00" in run_page and "limit $3.00" in run_page
    active = member.get("/runs/active/?fragment=1").content.decode()
    assert 'data-testid="over-budget"' in active and "over budget" in active
    assert 'data-testid="projected">$4.00' in active
    runs_page = response_text(people["admin"].get("/budgets/runs/"))
    assert "live-1" in runs_page and "guard-stop" in runs_page


def test_reservation_beside_the_forecast(over_budget, people) -> None:  # type: ignore[no-untyped-def]
    finance = people["finance"]
    budgets = response_text(finance.get("/budgets/"))
    # live-1 still expects $2 of its code step: reserved against the month's budget.
    assert "reserved by 1 active run: $2.00" in budgets
    overview = response_text(finance.get("/"))
    assert "Reserved by 1 active run: $2.00" in overview


def test_another_tenant_sees_no_guard(over_budget, beta) -> None:  # type: ignore[no-untyped-def]
    admin = logged_in_client(beta.host, beta.admin_email)
    page = response_text(admin.get("/budgets/runs/"))
    assert "No run budgets yet" in page and "live-1" not in page
    assert admin.get("/runs/live-1/").status_code == 404
    assert "over-budget" not in admin.get("/runs/active/?fragment=1").content.decode()


def test_the_over_budget_incident_shows_like_any_alert(over_budget, people) -> None:  # type: ignore[no-untyped-def]
    from alerts.oncall.models import Incident

    with schema_context(over_budget.schema):
        incident = Incident.objects.get(rule="run.over_budget")
    assert incident.severity == "critical" and incident.labels["run_id"] == "live-1"
    page = people["admin"].get(f"/alerts/{incident.pk}/")
    assert page.status_code == 200 and "live-1" in response_text(page)
    listed = people["admin"].get("/api/v1/alerts").json()["results"]
    assert [a["rule"] for a in listed] == ["run.over_budget"]


def test_the_forecast_and_the_reservation_add_up_in_cents() -> None:
    """Beside each other on the pages, the forecast, the reservation and their sum read as a
    sum (a review found $1,682.08 and $0.02 beside $1,682.11), and "over" is what they show."""
    from datetime import date
    from decimal import Decimal

    from billing.models import Budget
    from billing.selectors.budgets import BudgetStatus
    from billing.selectors.guard import Reservation, budgets_reserved

    def status(amount: str) -> BudgetStatus:
        return BudgetStatus(
            budget=Budget(project="", amount=Decimal(amount)),
            month=date(2026, 12, 1),
            spent=Decimal("65.29"),
            forecast_month_end=Decimal("1682.0849"),
            forecast_month_end_hi80=None,
            status="at_risk",
            actual_thresholds_crossed=[],
            forecast_thresholds_crossed=[],
            crossing_expected=None,
            crossing_lo80=None,
            crossing_hi80=None,
        )

    held = {"": Reservation(runs=2, amount=Decimal("0.0249"))}
    [under, reached] = budgets_reserved([status("1682.11"), status("1682.10")], held)
    assert under.with_reserved == Decimal("1682.10") and not under.over
    assert reached.over
