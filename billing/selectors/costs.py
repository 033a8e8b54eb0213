"""Cost per customer, project, run, run type and template: direct token cost plus allocated
infrastructure (selectors; current tenant schema, reading the platform's allocation lines).
The month's totals per project are ``billing.selectors.periods.month_cost``; runs come from the
run ledger (``usage.selectors.run_usage``), never from raw events.

A run's infrastructure cost is its share of its project's allocation, split by the pool's driver
over the project's runs (largest remainder, so run shares sum exactly to the project's line).
Allocation that no run of the project used (say, storage with no per-run usage) stays with the
project as ``infra_outside_runs``; AI cost of calls outside any run is ``token_outside_runs``.
Every total reconciles: tenant = projects = runs + outside. Only runs that used something in the
month are listed and take an infrastructure share (a queued run with no usage costs nothing).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.domain.allocation import UNALLOCATED, round_lines, split_by_driver, to_minor
from billing.operator.models import AllocationLine, AllocationRun
from billing.selectors.periods import ProjectCost, month_cost
from factory_portal.periods import month_text, next_month
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors
from usage.selectors import RunStatus

ZERO = Decimal(0)
FAILED = (RunStatus.FAILED, RunStatus.CANCELLED)
# Fixed forever: a report's reference is derived from it, and finance quotes references.
REPORT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "factory-portal:monthly-report")


def report_reference(tenant: Tenant, period: date) -> str:
    """The stable reference of a tenant's monthly report: the same tenant (schema) and month
    always give the same id, whatever the format and whenever it is produced."""
    return str(uuid.uuid5(REPORT_NAMESPACE, f"{tenant.schema_name}:{month_text(period)}"))


@dataclass
class RunCost:
    run_id: str
    project: str
    run_type: str
    template: str
    status: str
    token_cost: Decimal
    infra_cost: Decimal = ZERO
    retried_cost: Decimal = ZERO
    calls: int = 0
    unpriced_calls: int = 0

    @property
    def total(self) -> Decimal:
        return self.token_cost + self.infra_cost


@dataclass
class UnitCost:
    runs: int = 0
    succeeded: int = 0
    total: Decimal = ZERO

    @property
    def per_successful_run(self) -> Decimal | None:
        """Everything spent (failures included) per run that delivered."""
        return self.total / self.succeeded if self.succeeded else None


@dataclass
class CostReport:
    tenant: Tenant
    period: date
    allocation_status: str  # none | draft | closed
    projects: dict[str, ProjectCost] = field(default_factory=dict)
    runs: list[RunCost] = field(default_factory=list)
    lines: list[AllocationLine] = field(default_factory=list)  # the tenant's, with their why

    @property
    def reference(self) -> str:
        return report_reference(self.tenant, self.period)

    @property
    def token_cost(self) -> Decimal:
        return sum((p.token_cost for p in self.projects.values()), ZERO)

    @property
    def infra_cost(self) -> Decimal:
        return sum((p.infra_cost for p in self.projects.values()), ZERO)

    @property
    def total(self) -> Decimal:
        return self.token_cost + self.infra_cost

    @property
    def token_outside_runs(self) -> Decimal:
        """AI cost of calls that belong to no run (the month's AI minus its runs')."""
        return self.token_cost - sum((run.token_cost for run in self.runs), ZERO)

    @property
    def calls(self) -> int:
        return sum(run.calls for run in self.runs)

    def in_cents(self) -> tuple[list[tuple[Decimal, Decimal]], Decimal, Decimal]:
        """Each run's AI and infrastructure cost and the AI and infrastructure outside runs,
        rounded to the cent together (largest remainder), so that they add up exactly to the
        month's total to the cent: the one rounding the runs sheet and the costs page's groups
        share. Returns (per run in ``runs`` order, outside AI, outside infrastructure)."""
        outside_ai = self.token_outside_runs
        outside_infra = sum((p.infra_outside_runs for p in self.projects.values()), ZERO)
        values = round_lines(
            [v for r in self.runs for v in (r.token_cost, r.infra_cost)]
            + [outside_ai, outside_infra]
        )
        per_run = [(values[2 * i], values[2 * i + 1]) for i in range(len(self.runs))]
        return per_run, values[-2], values[-1]

    def by(self, attribute: str) -> dict[str, UnitCost]:
        """Run costs grouped by ``run_type`` or ``template``."""
        groups: dict[str, UnitCost] = defaultdict(UnitCost)
        for run in self.runs:
            group = groups[getattr(run, attribute) or "(none)"]
            group.runs += 1
            group.succeeded += run.status == RunStatus.SUCCEEDED
            group.total += run.total
        return dict(groups)

    @property
    def waste(self) -> dict[str, Decimal]:
        return {
            "failed_runs": sum((r.total for r in self.runs if r.status == RunStatus.FAILED), ZERO),
            "cancelled_runs": sum(
                (r.total for r in self.runs if r.status == RunStatus.CANCELLED), ZERO
            ),
            "retried_attempts": sum(
                (r.retried_cost for r in self.runs if r.status not in FAILED), ZERO
            ),
        }


def cost_report(*, tenant: Tenant, period: date) -> CostReport:
    """The tenant's costs of its month ``period`` (first day); run in the tenant's schema."""
    end = next_month(period)
    month = month_cost(tenant=tenant, month=period)
    allocation = AllocationRun.objects.filter(period=period).first()
    report = CostReport(
        tenant=tenant,
        period=period,
        allocation_status=allocation.status if allocation else "none",
    )
    for slug, cost in month.projects.items():
        report.projects[slug] = ProjectCost(token_cost=cost.token_cost)
    usages = usage_selectors.run_usage(start=period, end=end)
    report.runs = _run_costs(usages)
    if allocation is None:
        return report
    report.lines = list(
        AllocationLine.objects.filter(run=allocation, tenant=tenant)
        .select_related("pool", "rule")
        .order_by("pool_id", "level", "project", "part")
    )
    runs_by_project: dict[str, list[tuple[RunCost, dict[str, Decimal]]]] = defaultdict(list)
    for cost, usage in zip(report.runs, usages, strict=True):
        runs_by_project[cost.project].append((cost, usage.drivers))
    for line in report.lines:
        if line.level != "project":
            continue
        project = report.projects.setdefault(line.project, ProjectCost())
        project.infra_cost += line.amount
        _spread_over_runs(line, runs_by_project.get(line.project, []), project)
    return report


def range_report(*, tenant: Tenant, start: date, end: date) -> CostReport:
    """The tenant's AI cost of its days ``start <= day < end`` (any run of days), per project and
    run: what a range that is not a calendar month shows exactly. Infrastructure is allocated per
    calendar month, so it is not in (never prorated): ``allocation_status`` is ``none``."""
    report = CostReport(tenant=tenant, period=start, allocation_status="none")
    for slug, cost in usage_selectors.token_cost_by_project(start=start, end=end).items():
        report.projects[slug] = ProjectCost(token_cost=cost)
    report.runs = _run_costs(usage_selectors.run_usage(start=start, end=end))
    return report


def _run_costs(usages: list[usage_selectors.RunUsage]) -> list[RunCost]:
    return [
        RunCost(
            u.run_id,
            u.project,
            u.run_type,
            u.template,
            u.status,
            u.token_cost,
            retried_cost=u.retried_cost,
            calls=u.calls,
            unpriced_calls=u.unpriced_calls,
        )
        for u in usages
    ]


def _spread_over_runs(
    line: AllocationLine, runs: list[tuple[RunCost, dict[str, Decimal]]], project: ProjectCost
) -> None:
    driver = "runs" if line.driver in ("even", "contract_weight", "reversal", "") else line.driver
    quantities = {cost.run_id: drivers.get(driver, ZERO) for cost, drivers in runs}
    by_id = {cost.run_id: cost for cost, _ in runs}
    for share in split_by_driver(
        to_minor(line.amount), quantities, method=line.method, driver=driver, part=line.part
    ):
        if share.key == UNALLOCATED:
            project.infra_outside_runs += share.amount
        else:
            by_id[share.key].infra_cost += share.amount


def project_allocation_lines(
    *, tenant: Tenant, months: list[date]
) -> dict[tuple[date, str], list[AllocationLine]]:
    """The tenant's project-level allocation lines per (month, project), from each month's
    allocation run (the same lines the cost report and the exports use)."""
    lines: dict[tuple[date, str], list[AllocationLine]] = {}
    for month in months:
        run = AllocationRun.objects.filter(period=month).first()
        if run is None:
            continue
        for line in (
            AllocationLine.objects.filter(run=run, tenant=tenant, level="project")
            .select_related("pool")
            .order_by("project", "pool_id", "part")
        ):
            lines.setdefault((month, line.project), []).append(line)
    return lines
