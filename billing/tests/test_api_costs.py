"""``GET /api/v1/costs``: AI cost per period and dimension, and with monthly periods the allocated
infrastructure and total, equal to the cost report behind the dashboards and the exports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.tests.test_costs_exports import month  # noqa: F401  (fixture)
from tests.support import bearer, host_client, key_for

pytestmark = pytest.mark.django_db


def test_monthly_costs_by_project_equal_the_cost_report(month, alpha):  # noqa: F811
    report = month
    _, raw = key_for(alpha, ["read"])
    body = (
        host_client(alpha.host)
        .get(
            "/api/v1/costs?start=2026-09-01&end=2026-10-01&granularity=month"
            "&group_by=project&details=true",
            **bearer(raw),
        )
        .json()
    )
    rows = {r["project"]: r for r in body["results"]}
    for name, project in report.projects.items():
        assert Decimal(rows[name]["token_cost"]) == project.token_cost
        assert Decimal(rows[name]["infrastructure_cost"]) == project.infra_cost
        assert Decimal(rows[name]["total"]) == project.total
    assert sum(Decimal(line["amount"]) for line in rows["web"]["allocation"]) == Decimal("60.00")
    assert rows["web"]["allocation"][0]["driver"] == "cpu_seconds"
    whole = (
        host_client(alpha.host)
        .get("/api/v1/costs?start=2026-09-01&end=2026-10-01&granularity=month", **bearer(raw))
        .json()["results"]
    )
    assert len(whole) == 1 and Decimal(whole[0]["total"]) == report.total


def test_a_month_the_period_only_touches_has_no_infrastructure(month, alpha, monkeypatch):  # noqa: F811
    """Allocation is monthly and no month is prorated (as on the costs page): a month row of a
    period that starts or ends inside the month gives its AI cost alone. A review found the
    whole month's allocation added to such rows, and to a one-day row of a date-only range in a
    tenant west of UTC (dates were read as UTC; they are the tenant's days now)."""
    from factory_portal.tenants.services import tenant_timezone_set

    report = month
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)

    def rows(query: str) -> list[tuple[str, str, str | None, str | None]]:
        body = client.get(f"/api/v1/costs?granularity=month&{query}", **bearer(raw)).json()
        return [
            (r["period_start"], r["token_cost"], r["infrastructure_cost"], r["total"])
            for r in body["results"]
        ]

    ai = f"{report.token_cost:.10f}"
    whole = ("2026-09-01T00:00:00Z", ai, f"{report.infra_cost:.2f}", f"{report.total:.10f}")
    assert rows("start=2026-09-01&end=2026-10-01") == [whole]
    assert rows("start=2026-08-20&end=2026-10-10") == [whole]  # September inside, with margins
    assert rows("start=2026-09-05&end=2026-10-01") == [("2026-09-01T00:00:00Z", ai, None, None)]
    assert rows("start=2026-09-01&end=2026-09-20") == [("2026-09-01T00:00:00Z", ai, None, None)]
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    tenant_timezone_set(tenant=alpha.tenant, timezone="America/New_York")
    # Dates alone are New York's days: its September is whole, as with explicit offsets.
    local = ("2026-09-01T04:00:00Z", *whole[1:])
    assert rows("start=2026-09-01&end=2026-10-01") == [local]
    assert rows("start=2026-09-01T00:00:00-04:00&end=2026-10-01T00:00:00-04:00") == [local]
    # A date-time without an offset stays UTC: 8 pm the day before in New York, not whole.
    utc = rows("start=2026-09-01T00:00:00&end=2026-10-01T00:00:00")
    assert [(ai_cost, infra, total) for _, ai_cost, infra, total in utc] == [(ai, None, None)]


def test_daily_costs_have_no_infrastructure_and_filters_apply(month, alpha):  # noqa: F811
    _, raw = key_for(alpha, ["read"])
    body = (
        host_client(alpha.host)
        .get(
            "/api/v1/costs?start=2026-09-01&end=2026-10-01&group_by=model&project=web",
            **bearer(raw),
        )
        .json()
    )
    assert [
        (r["period_start"], r["token_cost"], r["infrastructure_cost"]) for r in body["results"]
    ] == [("2026-09-08T00:00:00Z", "7.0000000000", None)]


def test_costs_validation_scopes_and_isolation(month, alpha, beta):  # noqa: F811
    _, raw = key_for(alpha, ["read"])
    _, ingest = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["read"])
    client = host_client(alpha.host)
    bad = client.get("/api/v1/costs?group_by=resource_type", **bearer(raw))
    assert bad.status_code == 400 and "not split by resource_type" in bad.content.decode()
    assert client.get("/api/v1/costs", **bearer(ingest)).status_code == 403
    assert client.get("/api/v1/costs", **bearer(beta_key)).status_code == 401
    theirs = (
        host_client(beta.host)
        .get("/api/v1/costs?start=2026-09-01&end=2026-10-01&granularity=month", **bearer(beta_key))
        .json()
    )
    assert theirs["results"] == []


def test_allocation_without_ai_cost_still_gets_its_row(alpha):
    from datetime import UTC, date, datetime

    from django_tenants.utils import schema_context

    from billing.operator.models import CostPool
    from billing.operator.services.allocation import allocation_run
    from usage.domain.events import InfraEventIn
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest

    at = datetime(2026, 10, 7, tzinfo=UTC)
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                InfraEventIn(0, "o1", at, "ops", "", "", "", "compute", Decimal(5), "cpu_seconds")
            ],
            pricer=pricer_for(alpha.tenant),
        )
    CostPool.objects.create(
        period=date(2026, 10, 1),
        name="Compute",
        provider="AWS",
        service_category="Compute",
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(80),
        effective_cost=Decimal(80),
        list_cost=Decimal(80),
        rows=1,
    )
    allocation_run(period=date(2026, 10, 1))
    _, raw = key_for(alpha, ["read"])
    rows = (
        host_client(alpha.host)
        .get(
            "/api/v1/costs?start=2026-10-01&end=2026-11-01&granularity=month&group_by=project",
            **bearer(raw),
        )
        .json()["results"]
    )
    assert [(r["project"], r["token_cost"], r["infrastructure_cost"]) for r in rows] == [
        ("ops", "0.0000000000", "80.00")
    ]
