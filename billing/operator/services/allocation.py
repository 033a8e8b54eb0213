"""Allocation runs: fetch pools, rules and every tenant's usage drivers, compute with
``billing.domain.allocation``, persist lines; month close and corrections.

A draft run is recomputed from scratch (same inputs, same lines; the inputs' digest is stored).
Closing freezes it. Re-allocating a closed period leaves its lines alone and writes the
differences as correction lines into the next open period, marked with the period they correct.
Pools are allocated by their ``EffectiveCost`` (after discounts and amortisation).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.domain.allocation import UNALLOCATED, Line, Method, Rule, allocate, split_line
from billing.operator.models import AllocationLine, AllocationRule, AllocationRun, CostPool
from factory_portal.broker import enqueue
from factory_portal.periods import month_text, next_month
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants
from factory_portal.tenants.services import PUBLIC_SCHEMA
from usage.selectors.operator import tenants_allocation_drivers

# When no operator rule matches a pool: split by the usage that drives that kind of cost.
DEFAULT_DRIVERS = {
    "Compute": "cpu_seconds",
    "Storage": "gb_hours",
    "AI and Machine Learning": "token_cost",
    "Databases": "job_seconds",
}
DEFAULT_RULE_NAME = "default"


@dataclass
class TenantUsage:
    tenant: Tenant
    drivers: dict[str, dict[str, Decimal]]  # driver -> project -> quantity

    def total(self, driver: str) -> Decimal:
        return sum(self.drivers.get(driver, {}).values(), Decimal(0))

    @property
    def active_projects(self) -> list[str]:
        return sorted({p for values in self.drivers.values() for p in values})


def usage_by_tenant(period: date) -> dict[str, TenantUsage]:
    # Every tenant, suspended ones too: who was charged is decided by the period's usage, not by
    # today's status. Read for all of them in a few statements (a schema per tenant in turn
    # was three queries a tenant: seconds at ten thousand tenants, on the what-if page too).
    tenants = list(customer_tenants())
    drivers = tenants_allocation_drivers(
        [t.schema_name for t in tenants], start=period, end=next_month(period)
    )
    return {t.slug: TenantUsage(t, drivers[t.schema_name]) for t in tenants}


def rule_for(pool: CostPool, rules: list[AllocationRule]) -> tuple[Rule, AllocationRule | None]:
    matching = [
        r
        for r in rules
        if r.active
        and r.provider in ("", pool.provider)
        and r.service_category in ("", pool.service_category)
        and r.charge_category in ("", pool.charge_category)
    ]
    if matching:
        chosen = max(matching, key=lambda r: (r.specificity, -r.pk))
        return Rule(
            chosen.method,
            chosen.driver,
            chosen.version,
            chosen.fixed_amount,
            chosen.fixed_fraction,
            chosen.fixed_split,
        ), chosen
    driver = DEFAULT_DRIVERS.get(pool.service_category)
    if driver is None:
        return Rule(Method.PROPORTIONAL, "runs"), None
    return Rule(Method.USAGE, driver), None


@dataclass
class PoolResult:
    pool: CostPool
    rule: Rule
    rule_model: AllocationRule | None
    tenant_lines: list[tuple[Line, list[Line]]] = field(default_factory=list)


def pool_allocate(
    pool: CostPool,
    rule: Rule,
    usage: dict[str, TenantUsage],
    rule_model: AllocationRule | None = None,
) -> PoolResult:
    """Both levels of one pool: tenants, then each tenant's projects."""
    driver = rule.driver if rule.driver != "even" else "runs"
    tenant_quantities = {slug: u.total(driver) for slug, u in usage.items()}
    active = [slug for slug, u in sorted(usage.items()) if u.active_projects]
    weights = {slug: u.tenant.contract_weight for slug, u in usage.items()}
    result = PoolResult(pool, rule, rule_model)
    for line in allocate(
        pool.effective_cost, rule, tenant_quantities, active=active, weights=weights
    ):
        if line.unallocated:
            result.tenant_lines.append((line, []))
            continue
        tenant_usage = usage[line.key]
        projects = split_line(
            line, tenant_usage.drivers.get(line.driver, {}), active=tenant_usage.active_projects
        )
        result.tenant_lines.append((line, projects))
    return result


def _digest(
    pools: list[CostPool], rules: list[AllocationRule], usage: dict[str, TenantUsage]
) -> str:
    payload = {
        "pools": [[p.pk, str(p.effective_cost), p.currency] for p in pools],
        "rules": [[r.pk, r.version, r.active] for r in rules],
        "usage": {
            slug: [
                str(u.tenant.contract_weight),
                {
                    d: {p: str(q) for p, q in sorted(v.items())}
                    for d, v in sorted(u.drivers.items())
                },
            ]
            for slug, u in sorted(usage.items())
        },
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def allocation_compute(period: date) -> tuple[list[PoolResult], str]:
    pools = list(CostPool.objects.filter(period=period).order_by("pk"))
    rules = list(AllocationRule.objects.order_by("pk"))
    usage = usage_by_tenant(period)
    results = []
    for pool in pools:
        rule, rule_model = rule_for(pool, rules)
        results.append(pool_allocate(pool, rule, usage, rule_model))
    return results, _digest(pools, rules, usage)


def _line_rows(
    run: AllocationRun, results: list[PoolResult], tenants: dict[str, Tenant]
) -> list[AllocationLine]:
    rows = []
    for result in results:
        common = {
            "run": run,
            "pool": result.pool,
            "currency": result.pool.currency,
            "rule": result.rule_model,
            "rule_version": result.rule.version,
        }
        for line, projects in result.tenant_lines:
            tenant = None if line.unallocated else tenants[line.key]
            rows.append(
                _row(
                    line,
                    level="tenant",
                    tenant=tenant,
                    project=UNALLOCATED if tenant is None else "",
                    **common,
                )
            )
            rows += [
                _row(p, level="project", tenant=tenant, project=p.key, **common) for p in projects
            ]
    return rows


def _row(line: Line, **fields: object) -> AllocationLine:
    return AllocationLine(
        amount=line.amount,
        method=line.method,
        driver=line.driver,
        driver_quantity=line.driver_quantity,
        ratio=line.ratio,
        part=line.part,
        **fields,
    )


@dataclass
class RunOutcome:
    run: AllocationRun
    lines: int
    corrections: int = 0
    allocated: Decimal = Decimal(0)
    unallocated: Decimal = Decimal(0)


class AllocationRefused(ValueError):
    """A period that cannot be allocated; the message says why, for the operator."""


def allocation_run(*, period: date, close: bool = False) -> RunOutcome:
    """Allocate ``period`` (a draft is recomputed); ``close`` freezes it afterwards. A month
    that has not begun is refused: it has no bill, and its empty draft (or a closed month with
    nothing in it) showed on the customers' costs as allocated (an operator review)."""
    this_month = timezone.now().date().replace(day=1)
    if period > this_month:
        raise AllocationRefused(
            f"{month_text(period)} has not begun: allocate a month once its bill is imported."
        )
    results, digest = allocation_compute(period)
    tenants = {t.slug: t for t in customer_tenants()}
    now = timezone.now()
    with transaction.atomic():
        run, _ = AllocationRun.objects.select_for_update().get_or_create(
            period=period, defaults={"inputs_digest": digest, "computed_at": now}
        )
        if run.status == AllocationRun.Status.CLOSED:
            return _correct_closed(run, results, tenants)
        run.lines.filter(corrects_period__isnull=True).delete()
        rows = _line_rows(run, results, tenants)
        AllocationLine.objects.bulk_create(rows, batch_size=5000)
        run.inputs_digest, run.computed_at = digest, now
        if close:
            run.status, run.closed_at = AllocationRun.Status.CLOSED, now
        run.save()
        _run_shares_refresh(period)
    return _outcome(run, rows)


def _run_shares_refresh(period: date) -> None:
    """Once committed, every tenant's runs get their share of the new allocation (run history
    and the runs API show total cost per run)."""
    from billing.tasks import run_allocations_refresh_all

    month = month_text(period)
    # A broker outage only delays the shares until the beat's next summary refresh.
    transaction.on_commit(
        lambda: enqueue(run_allocations_refresh_all, schema=PUBLIC_SCHEMA, args=(month,))
    )


def _outcome(run: AllocationRun, rows: list[AllocationLine], corrections: int = 0) -> RunOutcome:
    tenant_rows = [r for r in rows if r.level == "tenant"]
    return RunOutcome(
        run=run,
        lines=len(rows),
        corrections=corrections,
        allocated=sum((r.amount for r in tenant_rows if r.tenant is not None), Decimal(0)),
        unallocated=sum((r.amount for r in tenant_rows if r.tenant is None), Decimal(0)),
    )


LineKey = tuple[int, str, int | None, str, str]  # pool, level, tenant, project, part


def _key(row: AllocationLine) -> LineKey:
    return (row.pool_id, row.level, row.tenant_id, row.project, row.part)


def _correct_closed(
    run: AllocationRun, results: list[PoolResult], tenants: dict[str, Tenant]
) -> RunOutcome:
    """A closed period is never rewritten: what changed goes into the next open period."""
    target_period = next_month(run.period)
    while AllocationRun.objects.filter(
        period=target_period, status=AllocationRun.Status.CLOSED
    ).exists():
        target_period = next_month(target_period)
    target, _ = AllocationRun.objects.select_for_update().get_or_create(
        period=target_period, defaults={"inputs_digest": "", "computed_at": timezone.now()}
    )
    booked: dict[LineKey, Decimal] = defaultdict(Decimal)
    # The closed run's own lines (not the corrections of earlier months it carries).
    for row in AllocationLine.objects.filter(run=run, corrects_period__isnull=True):
        booked[_key(row)] += row.amount
    for row in AllocationLine.objects.filter(corrects_period=run.period):
        booked[_key(row)] += row.amount
    fresh = _line_rows(target, results, tenants)
    corrections = []
    seen: set[LineKey] = set()
    for row in fresh:
        key = _key(row)
        seen.add(key)
        difference = row.amount - booked.get(key, Decimal(0))
        if difference:
            row.amount, row.corrects_period = difference, run.period
            corrections.append(row)
    for key, amount in booked.items():  # shares that no longer exist are reversed
        if key not in seen and amount:
            pool_id, level, tenant_id, project, part = key
            corrections.append(
                AllocationLine(
                    run=target,
                    pool_id=pool_id,
                    level=level,
                    tenant_id=tenant_id,
                    project=project,
                    part=part,
                    amount=-amount,
                    currency=CostPool.objects.get(pk=pool_id).currency,
                    method="reversal",
                    driver="",
                    driver_quantity=Decimal(0),
                    ratio=Decimal(0),
                    rule_version=0,
                    corrects_period=run.period,
                )
            )
    AllocationLine.objects.bulk_create(corrections)
    _run_shares_refresh(target_period)
    return _outcome(run, list(AllocationLine.objects.filter(run=run)), len(corrections))


# The what-if's column for the period's own rules: what a new draft would give now.
CURRENT_RULES = "rules"


def allocation_what_if(period: date) -> dict[str, dict[str, Decimal]]:
    """Each tenant's share (USD, cents) of the period's current pools under each method, side by
    side, by tenant slug (``unallocated`` for what nobody had usage for): usage-based (by the
    pool's usage driver), proportional (by runs), fixed + variable (a quarter fixed, evenly; the
    rest by the usage driver), and under ``CURRENT_RULES`` the period's own rules, i.e. what a
    new draft would allocate from the same pools and usage."""
    pools = list(CostPool.objects.filter(period=period).order_by("pk"))
    rules = list(AllocationRule.objects.order_by("pk"))
    usage = usage_by_tenant(period)
    table: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys((*Method.ALL, CURRENT_RULES), Decimal(0))
    )
    for pool in pools:
        rule, rule_model = rule_for(pool, rules)
        for line, _ in pool_allocate(pool, rule, usage, rule_model).tenant_lines:
            table[line.key][CURRENT_RULES] += line.amount
        driver = (
            rule.driver
            if rule.driver not in ("even", "runs")
            else DEFAULT_DRIVERS.get(pool.service_category, "token_cost")
        )
        variants = {
            Method.USAGE: Rule(Method.USAGE, driver),
            Method.PROPORTIONAL: Rule(Method.PROPORTIONAL, "runs"),
            Method.FIXED_VARIABLE: Rule(
                Method.FIXED_VARIABLE, driver, fixed_fraction=Decimal("0.25")
            ),
        }
        for method, variant in variants.items():
            for line, _ in pool_allocate(pool, variant, usage).tenant_lines:
                table[line.key][method] += line.amount
    return dict(table)
