"""Cost per project and run, waste, and finance exports that agree with each other."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context, tenant_context
from openpyxl import load_workbook

from billing.exports import write_csv, write_focus, write_xlsx
from billing.operator.models import CostPool
from billing.operator.services.allocation import allocation_run
from billing.selectors.costs import cost_report
from billing.tasks import cost_summary_refresh_tenant
from tests.support import llm_event_in
from usage.domain.events import InfraEventIn
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

PERIOD = date(2026, 9, 1)
T = datetime(2026, 9, 8, 10, tzinfo=UTC)


def _run(run_id, status, project="web", retry=False):
    jobs = [
        JobUpdate(
            "build", 1, "Failed" if retry else status, T, "build", T, T + timedelta(minutes=1)
        )
    ]
    if retry:
        jobs.append(
            JobUpdate(
                "build",
                2,
                status,
                T + timedelta(minutes=2),
                "build",
                T + timedelta(minutes=2),
                T + timedelta(minutes=3),
            )
        )
    runs_ingest(
        updates=[
            RunUpdate(
                0,
                run_id,
                project,
                status,
                T + timedelta(minutes=5),
                template_recipe_id="react-spa",
                run_type="frontend",
                requested_at=T,
                started_at=T,
                finished_at=T + timedelta(minutes=5),
                jobs=tuple(jobs),
            )
        ]
    )


@pytest.fixture
def month(alpha):
    with schema_context(alpha.schema):
        _run("ok-1", "Succeeded")
        _run("ok-2", "Succeeded", retry=True)
        _run("bad", "Failed")
        _run("stop", "Cancelled", project="api")
        calls = [
            llm_event_in("c1", T, project="web", run_id="ok-1", job_id="build", cost=Decimal("1")),
            llm_event_in("c2", T, project="web", run_id="ok-2", job_id="build", cost=Decimal("2")),
            llm_event_in("c3", T, project="web", run_id="bad", cost=Decimal("4")),
            llm_event_in("c4", T, project="api", run_id="stop", cost=Decimal("8")),
            llm_event_in("c5", T, project="api", cost=Decimal("0.3333333333")),  # outside runs
        ]
        infra = [
            InfraEventIn(0, f"i-{r}", T, p, r, "", "", "compute", Decimal(q), "cpu_seconds")
            for r, p, q in [
                ("ok-1", "web", 10),
                ("ok-2", "web", 20),
                ("bad", "web", 30),
                ("stop", "api", 40),
            ]
        ]
        events_ingest(events=calls + infra, pricer=pricer_for(alpha.tenant))
    CostPool.objects.create(
        period=PERIOD,
        name="AWS Compute",
        provider="AWS",
        service_category="Compute",
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(100),
        effective_cost=Decimal(100),
        list_cost=Decimal(100),
        rows=1,
    )
    allocation_run(period=PERIOD)
    with tenant_context(alpha.tenant):  # what the allocation's on-commit task does per tenant
        cost_summary_refresh_tenant(f"{PERIOD:%Y-%m}")
        return cost_report(tenant=alpha.tenant, period=PERIOD)


def test_costs_reconcile_from_tenant_to_runs(month):
    report = month
    assert report.token_cost == Decimal("15.3333333333")
    assert report.infra_cost == Decimal("100.00")  # alpha is the only tenant with cpu usage
    web, api = report.projects["web"], report.projects["api"]
    assert (web.infra_cost, api.infra_cost) == (Decimal("60.00"), Decimal("40.00"))
    runs = {r.run_id: r for r in report.runs}
    assert runs["ok-2"].infra_cost == Decimal("20.00")  # its 20 of the project's 60 cpu-seconds
    assert (
        sum(r.infra_cost for r in report.runs)
        + sum(p.infra_outside_runs for p in report.projects.values())
        == report.infra_cost
    )
    assert runs["stop"].total == Decimal("48.00")


def test_waste_and_cost_per_successful_run(month):
    report = month
    assert report.waste["failed_runs"] == Decimal("34.00")  # 4 + 30
    assert report.waste["cancelled_runs"] == Decimal("48.00")
    assert report.waste["retried_attempts"] == Decimal(0)  # ok-2's call ran in attempt 2
    by_template = report.by("template")["react-spa"]
    assert (by_template.runs, by_template.succeeded) == (4, 2)
    assert by_template.per_successful_run == (Decimal(1 + 10 + 2 + 20 + 34 + 48)) / 2


def test_csv_focus_and_xlsx_agree(month, alpha):
    report = month
    text, focus, book = io.StringIO(), io.StringIO(), io.BytesIO()
    with schema_context(alpha.schema):  # exports read the tenant's usage
        csv_total = write_csv(report, text)
        focus_total = write_focus(report, focus)
        write_xlsx(report, book)
    charges = pd.read_csv(io.StringIO(text.getvalue()), dtype={"amount_usd": str})
    assert sum(map(Decimal, charges["amount_usd"])) == csv_total == Decimal("115.33")
    assert focus_total == csv_total
    frame = pd.read_csv(io.StringIO(focus.getvalue()), dtype=str)
    assert sum(map(Decimal, frame["BilledCost"])) == csv_total
    assert set(frame["AllocatedMethodId"].dropna()) == {"usage"}
    workbook = load_workbook(io.BytesIO(book.getvalue()), read_only=True)
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(values_only=True)}
    assert Decimal(str(summary["Total (USD)"])) == csv_total

    def column_sum(sheet, column):
        rows = list(workbook[sheet].iter_rows(values_only=True))[1:]
        return sum((Decimal(str(r[column])) for r in rows), Decimal(0))

    assert column_sum("Projects", 3) == csv_total
    assert column_sum("Runs", 7) == csv_total
    assert column_sum("Models", 6) + column_sum("Allocation", 10) == csv_total


def test_report_commands(month, tmp_path):
    out = tmp_path / "acme.xlsx"
    call_command(
        "report",
        "--tenant",
        "alpha",
        "--month",
        "2026-09",
        "--format",
        "xlsx",
        "-o",
        str(out),
        stdout=io.StringIO(),
    )
    assert load_workbook(out, read_only=True).sheetnames == [
        "Summary",
        "Projects",
        "Models",
        "Token kinds",
        "Allocation",
        "Runs",
    ]
    customers = tmp_path / "customers.csv"
    text = io.StringIO()
    call_command("report", "--customers", "--month", "2026-09", "-o", str(customers), stdout=text)
    frame = pd.read_csv(customers, dtype={"total_usd": str})
    assert dict(zip(frame["tenant"], frame["total_usd"], strict=True))["alpha"] == "115.33"
