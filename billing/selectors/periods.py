"""The cost of a period: the one answer to "what did this tenant (or project) spend from day A
to day B", which every page, API endpoint, export, budget, alert and task reads.

Periods are the tenant's days (its time zone): the daily rollups and the run ledger are kept by
local day, so a month, a week or any run of days is a plain range of those rows, exact in every
time zone (half-hour and DST zones included). AI cost is what the calls cost (re-pricing
corrections included). Infrastructure is allocated per month: a period includes the allocation
of each month it covers whole (the draft or closed allocation run of that month; none before the
operator allocates), so a partial month shows its AI cost and says that its infrastructure is
not in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from billing.operator.models import AllocationLine, AllocationRun
from factory_portal.periods import month_of, months_spanning, next_month
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors

ZERO = Decimal(0)


@dataclass
class ProjectCost:
    token_cost: Decimal = ZERO
    infra_cost: Decimal = ZERO
    infra_outside_runs: Decimal = ZERO  # filled by the cost report (its run spread)

    @property
    def total(self) -> Decimal:
        return self.token_cost + self.infra_cost


@dataclass(frozen=True)
class PeriodCost:
    start: date  # the tenant's first day of the period
    end: date  # the day after its last (exclusive)
    # The months whose infrastructure allocation the period covers whole, with each one's
    # allocation run status (draft | closed); a month without allocation run is absent.
    allocated_months: dict[date, str]
    projects: dict[str, ProjectCost] = field(default_factory=dict)

    @property
    def ai(self) -> Decimal:
        return sum((p.token_cost for p in self.projects.values()), ZERO)

    @property
    def infra(self) -> Decimal:
        return sum((p.infra_cost for p in self.projects.values()), ZERO)

    @property
    def total(self) -> Decimal:
        """AI plus the infrastructure allocated to the whole months in the period."""
        return self.ai + self.infra

    @property
    def whole_months(self) -> list[date]:
        return whole_months(self.start, self.end)

    def of_project(self, project: str) -> PeriodCost:
        """What ``period_cost`` returns for the same days and ``project`` ("": every project),
        taken from the tenant's cost (``self``) rather than read again."""
        if not project:
            return self
        projects = {project: replace(self.projects[project])} if project in self.projects else {}
        return replace(self, projects=projects)


def whole_months(start: date, end: date) -> list[date]:
    """The months that lie wholly inside the days ``start <= day < end``."""
    if end <= start:
        return []
    first = start if start.day == 1 else next_month(start)
    return [m for m in months_spanning(first, end) if next_month(m) <= end and m >= first]


def allocation_statuses(months: list[date]) -> dict[date, str]:
    """Each month's allocation run status (draft | closed); months not allocated are absent."""
    return dict(AllocationRun.objects.filter(period__in=months).values_list("period", "status"))


def period_cost(*, tenant: Tenant, start: date, end: date, project: str = "") -> PeriodCost:
    """The tenant's (or ``project``'s) cost of its days ``start <= day < end``; run in the
    tenant's schema."""
    projects: dict[str, ProjectCost] = {}
    for slug, cost in usage_selectors.token_cost_by_project(start=start, end=end).items():
        if not project or slug == project:
            projects.setdefault(slug, ProjectCost()).token_cost = cost
    allocated: dict[date, str] = {}
    for month in whole_months(start, end):
        run = AllocationRun.objects.filter(period=month).first()
        if run is None:
            continue
        allocated[month] = run.status
        lines = AllocationLine.objects.filter(run=run, tenant=tenant, level="project")
        if project:
            lines = lines.filter(project=project)
        for slug, amount in lines.values_list("project", "amount"):
            projects.setdefault(slug, ProjectCost()).infra_cost += amount
    return PeriodCost(start=start, end=end, allocated_months=allocated, projects=projects)


def month_cost(*, tenant: Tenant, month: date, project: str = "") -> PeriodCost:
    """The cost of the tenant's month ``month`` (any day of it): AI to date and the month's
    allocated infrastructure."""
    first = month_of(month)
    return period_cost(tenant=tenant, start=first, end=next_month(first), project=project)
