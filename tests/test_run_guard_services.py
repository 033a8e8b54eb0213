"""The run guard kept current from the ledger: projections follow ingest, the state rises once
per crossing (one ``run.over_budget`` alert and one on-call incident routed by severity), falls
back when the budget is raised, and a finished run keeps its final figures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from alerts.models import Alert
from alerts.oncall.models import Incident, Page, Route
from billing import services
from billing.models import RunBudget, RunGuard
from billing.selectors.guard import reservation, run_guard
from billing.tests.guard_data import TEMPLATE, history_make, live_run, run_with_jobs, spend

pytestmark = pytest.mark.django_db


@pytest.fixture
def guarded(alpha):  # type: ignore[no-untyped-def]
    with schema_context(alpha.schema):
        history_make()
        live_run()
        yield alpha


def test_projection_follows_ingest_and_alerts_once_per_crossing(guarded) -> None:  # type: ignore[no-untyped-def]
    Route.objects.all().delete()  # only these two routes
    Route.objects.create(
        name="pager", channel="pagerduty", severities=["critical"], routing_key="k"
    )
    Route.objects.create(
        name="chat", channel="slack", severities=["warning"], target="https://x.test/h"
    )
    budget = services.run_budget_set(template=TEMPLATE, amount=Decimal(5), warn_percent=80)

    services.run_guards_refresh()
    guard = RunGuard.objects.get(run__run_id="live-1")
    assert (guard.cost_so_far, guard.expected_remaining, guard.projected_cost) == (2, 2, 4)
    assert guard.state == "warn" and guard.limit == Decimal(5) and guard.budget == budget

    def alerts():  # type: ignore[no-untyped-def]
        return Alert.objects.filter(kind=Alert.Kind.RUN_BUDGET).order_by("id")

    assert [a.severity for a in alerts()] == ["warning"]
    assert alerts()[0].data["event"] == "run.over_budget"
    assert alerts()[0].data["projected"] == "4.00" and alerts()[0].data["limit"] == "5.00"
    warn_incident = Incident.objects.get(rule="run.over_budget")
    assert warn_incident.severity == "warning"
    assert [p.route.name for p in Page.objects.filter(incident=warn_incident)] == ["chat"]

    now = timezone.now()
    spend("live-1", "live-1-code", "2", "live-1-code-e1", now)  # code's $3 reached: nothing left
    services.run_guards_refresh()
    services.run_guards_refresh()  # evaluating again changes nothing
    assert alerts().count() == 1
    spend("live-1", "live-1-code", "1.5", "live-1-code-e2", now)  # $5.50 > $5
    services.run_guards_refresh()
    spend("live-1", "live-1-code", "3", "live-1-code-e3", now)
    services.run_guards_refresh()
    guard.refresh_from_db()
    assert guard.state == "stop" and guard.projected_cost == Decimal("8.5")
    assert [a.severity for a in alerts()] == ["warning", "critical"]
    stop_incident = Incident.objects.exclude(pk=warn_incident.pk).get(rule="run.over_budget")
    assert stop_incident.severity == "critical"
    assert [p.route.name for p in Page.objects.filter(incident=stop_incident)] == ["pager"]

    # The budget raised: back to ok, the incidents resolve; a new rise is a new crossing.
    services.run_budget_set(template=TEMPLATE, amount=Decimal(100), budget=budget)
    services.run_guards_refresh()
    guard.refresh_from_db()
    assert guard.state == "ok"
    assert set(Incident.objects.values_list("state", flat=True)) == {"resolved"}
    services.run_budget_set(template=TEMPLATE, amount=Decimal(8), budget=budget)
    services.run_guards_refresh()
    assert alerts().count() == 3


def test_p90_multiple_and_finished_run_final_figures(guarded) -> None:  # type: ignore[no-untyped-def]
    services.run_budget_set(template=TEMPLATE, basis="p90_multiple", multiple=Decimal("1.5"))
    answer = run_guard("live-1")
    assert answer is not None and answer.quote is not None
    assert answer.quote.p90 == Decimal(4) and answer.quote.runs >= 10
    assert answer.evaluation.limit == Decimal(6) and answer.state == "ok"
    services.run_guards_refresh()
    assert reservation().runs == 1 and reservation().amount == Decimal(2)

    run_with_jobs("live-1", "Succeeded", timezone.now(), ())
    services.run_guards_refresh()
    guard = RunGuard.objects.get(run__run_id="live-1")
    assert guard.finished and guard.expected_remaining == 0 and guard.projected_cost == 2
    assert reservation().runs == 0
    final = run_guard("live-1")
    assert final is not None and final.finished and final.evaluation.projected_total == 2


def test_run_without_budget_is_ok_with_no_limit(guarded) -> None:  # type: ignore[no-untyped-def]
    services.run_budget_set(project="web", template="another", amount=Decimal(1))
    answer = run_guard("live-1")
    assert answer is not None and answer.budget is None
    assert answer.state == "ok" and answer.evaluation.limit is None
    assert services.run_guards_refresh() == 0  # nothing stored for unguarded runs
    assert not RunGuard.objects.exists()
    assert not RunBudget.objects.filter(template=TEMPLATE).exists()
