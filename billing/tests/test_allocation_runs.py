"""Allocation runs against real tenants' usage: exact, explained, reproducible, closable."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django_tenants.utils import schema_context

from billing.operator.models import AllocationLine, AllocationRule, AllocationRun, CostPool
from billing.operator.services.allocation import allocation_run, allocation_what_if
from factory_portal.tenants.models import Tenant
from tests.support import llm_event_in
from usage.domain.events import InfraEventIn
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

PERIOD = date(2026, 9, 1)
AT = datetime(2026, 9, 10, 12, tzinfo=UTC)


def _cpu(tenant, project: str, seconds: str, event_id: str):
    with schema_context(tenant.schema):
        events_ingest(
            events=[
                InfraEventIn(
                    position=0,
                    event_id=event_id,
                    occurred_at=AT,
                    project=project,
                    run_id="",
                    job_id="",
                    tenant="",
                    resource_type="compute",
                    quantity=Decimal(seconds),
                    unit="cpu_seconds",
                )
            ],
            pricer=pricer_for(tenant.tenant),
        )


def _tokens(tenant, project: str, tokens: int, event_id: str):
    with schema_context(tenant.schema):
        events_ingest(
            events=[
                llm_event_in(event_id, AT, project=project, input_tokens=tokens, output_tokens=0)
            ],
            pricer=pricer_for(tenant.tenant),
        )


def _pool(amount: str, category: str = "Compute") -> CostPool:
    return CostPool.objects.create(
        period=PERIOD,
        name=f"AWS {category}",
        provider="AWS",
        service_category=category,
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(amount),
        effective_cost=Decimal(amount),
        list_cost=Decimal(amount),
        rows=1,
    )


@pytest.fixture
def usage(alpha, beta):
    _cpu(alpha, "web", "300", "a1")
    _cpu(alpha, "api", "100", "a2")
    _cpu(beta, "etl", "600", "b1")
    _tokens(alpha, "web", 1000, "t1")
    _tokens(beta, "etl", 3000, "t2")
    return alpha, beta


def _tenant_totals(run):
    rows = (
        AllocationLine.objects.filter(run=run, level="tenant")
        .values("tenant__slug")
        .annotate(total=Sum("amount"))
    )
    return {r["tenant__slug"]: r["total"] for r in rows}


def test_compute_pool_is_split_by_cpu_seconds_down_to_projects(usage):
    pool = _pool("1000.00000000001")
    outcome = allocation_run(period=PERIOD)
    run = outcome.run
    assert _tenant_totals(run) == {"alpha": Decimal("400.00"), "beta": Decimal("600.00")}
    projects = {
        (r.tenant.slug, r.project): r
        for r in AllocationLine.objects.filter(run=run, level="project")
    }
    assert projects[("alpha", "web")].amount == Decimal("300.00")
    assert projects[("alpha", "api")].amount == Decimal("100.00")
    line = AllocationLine.objects.get(run=run, level="tenant", tenant__slug="alpha")
    assert (line.method, line.driver, line.driver_quantity, line.ratio) == (
        "usage",
        "cpu_seconds",
        Decimal(400),
        Decimal("0.4000000000"),
    )
    assert (
        AllocationLine.objects.filter(run=run, level="tenant").aggregate(s=Sum("amount"))["s"]
        == Decimal("1000.00")
        == round(pool.effective_cost, 2)
    )


def test_pool_without_driver_usage_is_unallocated(usage):
    _pool("50.00", category="Storage")  # nobody reported gb_hours
    outcome = allocation_run(period=PERIOD)
    line = AllocationLine.objects.get(run=outcome.run, level="tenant")
    assert (line.tenant, line.project, line.amount) == (None, "unallocated", Decimal("50.00"))
    assert outcome.unallocated == Decimal("50.00")


def test_operator_rule_fixed_plus_variable_and_rerun_is_reproducible(usage):
    _pool("100.00")
    AllocationRule.objects.create(
        name="control plane",
        service_category="Compute",
        method="fixed_variable",
        driver="tokens",
        fixed_fraction=Decimal("0.5"),
    )
    first = allocation_run(period=PERIOD).run
    lines = list(
        AllocationLine.objects.filter(run=first)
        .values_list("tenant__slug", "project", "part", "amount")
        .order_by("pk")
    )
    assert _tenant_totals(first) == {"alpha": Decimal("37.50"), "beta": Decimal("62.50")}
    again = allocation_run(period=PERIOD).run
    assert again.inputs_digest == first.inputs_digest
    assert (
        list(
            AllocationLine.objects.filter(run=again)
            .values_list("tenant__slug", "project", "part", "amount")
            .order_by("pk")
        )
        == lines
    )


def test_closed_month_is_frozen_and_changes_become_corrections(usage):
    _pool("1000.00")
    allocation_run(period=PERIOD, close=True)
    closed = AllocationRun.objects.get(period=PERIOD)
    frozen = list(AllocationLine.objects.filter(run=closed).values_list("pk", "amount"))
    alpha, _ = usage
    _cpu(alpha, "web", "600", "late-usage")  # alpha now 1,000 of 1,600 cpu-seconds
    outcome = allocation_run(period=PERIOD)
    assert outcome.corrections > 0
    assert list(AllocationLine.objects.filter(run=closed).values_list("pk", "amount")) == frozen
    october = AllocationRun.objects.get(period=date(2026, 10, 1))
    corrections = AllocationLine.objects.filter(run=october, corrects_period=PERIOD, level="tenant")
    assert {c.tenant.slug: c.amount for c in corrections} == {
        "alpha": Decimal("225.00"),
        "beta": Decimal("-225.00"),
    }  # 625 - 400, 375 - 600
    assert allocation_run(period=PERIOD).corrections == 0  # nothing new to correct
    # A later correction into the same open run changes what cost summaries of that month are
    # keyed by, so none is served stale (a review found the tenant's page kept the old figure).
    from billing.selectors.summaries import month_fingerprint

    with schema_context(alpha.schema):
        before = month_fingerprint(date(2026, 10, 1))
    computed = AllocationRun.objects.get(period=date(2026, 10, 1)).computed_at
    _cpu(alpha, "web", "400", "later-usage")
    assert allocation_run(period=PERIOD).corrections > 0
    with schema_context(alpha.schema):
        assert month_fingerprint(date(2026, 10, 1)) != before
    # ...without touching when October's draft was computed: its staleness warning compares
    # with that (the final review found a first version hiding it).
    assert AllocationRun.objects.get(period=date(2026, 10, 1)).computed_at == computed


def test_what_if_compares_the_three_methods(usage):
    _pool("90.00")
    table = allocation_what_if(PERIOD)
    for method in ("usage", "proportional", "fixed_variable"):
        assert sum(row[method] for row in table.values()) == Decimal("90.00")
    assert table["alpha"]["usage"] == Decimal("36.00")


def test_allocate_command(usage):
    _pool("10.00")
    out = io.StringIO()
    call_command("allocate", "--period", "2026-09", "--close", stdout=out)
    assert "2026-09 (closed)" in out.getvalue()
    assert "allocated 10.00" in out.getvalue()
    out = io.StringIO()
    call_command("allocate", "--period", "2026-09", "--what-if", stdout=out)
    assert "alpha" in out.getvalue() and "proportional" in out.getvalue()
    assert AllocationRun.objects.get().closed_at - AllocationRun.objects.get().computed_at < (
        timedelta(seconds=5)
    )


def _cpu_at(tenant, project, seconds, event_id, at):
    with schema_context(tenant.schema):
        events_ingest(
            events=[
                InfraEventIn(
                    0, event_id, at, project, "", "", "", "compute", Decimal(seconds), "cpu_seconds"
                )
            ],
            pricer=pricer_for(tenant.tenant),
        )


def _pool_in(period, amount, category="Compute"):
    return CostPool.objects.create(
        period=period,
        name=category,
        provider="AWS",
        service_category=category,
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(amount),
        effective_cost=Decimal(amount),
        list_cost=Decimal(amount),
        rows=1,
    )


def test_rerunning_a_closed_month_keeps_earlier_corrections(alpha, beta):
    sep, octo = date(2026, 9, 1), date(2026, 10, 1)
    _cpu_at(alpha, "web", 1, "s1", datetime(2026, 9, 5, tzinfo=UTC))
    _cpu_at(beta, "etl", 1, "s2", datetime(2026, 9, 5, tzinfo=UTC))
    _cpu_at(alpha, "web", 1, "o1", datetime(2026, 10, 5, tzinfo=UTC))
    _pool_in(sep, "100")
    _pool_in(octo, "50")
    allocation_run(period=sep, close=True)
    _cpu_at(alpha, "web", 2, "s3", datetime(2026, 9, 6, tzinfo=UTC))  # September changes late
    assert allocation_run(period=sep).corrections > 0  # into October, still open
    allocation_run(period=octo, close=True)
    corrections = AllocationLine.objects.filter(corrects_period=sep).count()
    assert allocation_run(period=octo).corrections == 0
    assert AllocationLine.objects.filter(corrects_period=sep).count() == corrections


def test_suspended_tenants_are_still_charged_and_even_splits_skip_idle_ones(alpha, beta):
    sep = date(2026, 9, 1)
    _cpu_at(alpha, "web", 1, "s1", datetime(2026, 9, 5, tzinfo=UTC))
    _cpu_at(beta, "etl", 3, "s2", datetime(2026, 9, 5, tzinfo=UTC))
    Tenant.objects.filter(slug="beta").update(status=Tenant.Status.SUSPENDED)
    _pool_in(sep, "100")
    AllocationRule.objects.create(
        name="even", service_category="Storage", method="proportional", driver="even"
    )
    _pool_in(sep, "10", category="Storage")
    run = allocation_run(period=sep).run
    totals = {
        line.tenant.slug: line.amount
        for line in AllocationLine.objects.filter(
            run=run, level="tenant", pool__service_category="Compute"
        )
    }
    assert totals == {"alpha": Decimal("25.00"), "beta": Decimal("75.00")}
    even = AllocationLine.objects.filter(run=run, level="tenant", pool__service_category="Storage")
    assert {line.tenant.slug for line in even} == {"alpha", "beta"}  # gamma etc. never appear


def test_the_focus_export_keeps_a_credits_category_and_marks_corrections(usage):
    """FOCUS rows of infrastructure carry their pool's ChargeCategory (a credit stays a
    credit), a line correcting a closed month is ChargeClass "Correction", and a negative amount
    is written as a number ("-8.06", not the text "'-8.06"). A review found all three wrong."""
    import csv

    from billing.exports import write_focus
    from billing.selectors.costs import cost_report

    _pool("1000.00")
    allocation_run(period=PERIOD, close=True)
    alpha, beta = usage
    _cpu(alpha, "web", "600", "late-usage")  # September changes after its close
    october = date(2026, 10, 1)
    _cpu_at(beta, "etl", "100", "oct-1", datetime(2026, 10, 5, 12, tzinfo=UTC))
    credit = _pool_in(october, "-90.00")
    CostPool.objects.filter(pk=credit.pk).update(charge_category="Credit")
    allocation_run(period=october)
    assert allocation_run(period=PERIOD).corrections > 0  # written into October
    out = io.StringIO()
    with schema_context(beta.schema):
        write_focus(cost_report(tenant=beta.tenant, period=october), out)
    rows = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["ServiceName"]]
    infra = [r for r in rows if r["ChargeDescription"].startswith("Infrastructure")]
    corrections = [r for r in infra if json.loads(r["AllocatedMethodDetails"])["corrects_period"]]
    credits = [r for r in infra if r["ChargeCategory"] == "Credit"]
    assert corrections and all(r["ChargeClass"] == "Correction" for r in corrections)
    assert all(r["ChargeClass"] == "" for r in infra if r not in corrections)
    assert credits and all(Decimal(r["BilledCost"]) < 0 for r in credits)  # numbers, no "'"
    assert all(not r["BilledCost"].startswith("'") for r in rows)


def test_a_month_that_has_not_begun_is_not_allocated(alpha):
    """It made an empty draft that the customers' costs showed as allocated (an operator
    review): the command and the console say why, and nothing is made."""
    from django.utils import timezone

    from billing.operator.services.allocation import AllocationRefused
    from factory_portal.periods import month_text, next_month

    ahead = next_month(timezone.now().date().replace(day=1))
    with pytest.raises(AllocationRefused, match="has not begun"):
        allocation_run(period=ahead)
    with pytest.raises(Exception, match="has not begun"):
        call_command("allocate", "--period", month_text(ahead), stdout=io.StringIO())
    assert not AllocationRun.objects.filter(period=ahead).exists()
