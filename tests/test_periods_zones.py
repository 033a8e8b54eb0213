"""One period definition: for tenants in Tokyo, Berlin and Los Angeles, every surface (period
selector, cost report and summary, overview, budgets and their alert, the costs and report APIs,
the CSV export, run history) gives the same figure for the same local month, with calls at
month ends and across DST changes, and a change of time zone re-counts stored usage."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django_tenants.utils import schema_context

from alerts.models import Alert
from alerts.services import evaluate
from billing.selectors.budgets import budget_status
from billing.selectors.costs import cost_report
from billing.selectors.periods import month_cost, period_cost
from billing.selectors.summaries import cost_summary
from billing.services import budget_set
from factory_portal.periods import month_last_day
from factory_portal.tenants.services import tenant_timezone_set
from tests.support import bearer, host_client, key_for, llm_event_in, logged_in_client
from usage import selectors as usage_selectors
from usage.domain.runs import RunUpdate
from usage.pricing import pricer_for
from usage.selectors.overview import overview
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

ZONES = ["Asia/Tokyo", "Europe/Berlin", "America/Los_Angeles"]
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)

# Calls as UTC instants, each with a distinct power-of-two cost so any misplaced call shows.
MOMENTS = [
    datetime(2026, 10, 24, 23, 30, tzinfo=UTC),  # Berlin: the night before DST ends (Oct 25)
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # Berlin: 02:30 CET after the change... or CEST
    datetime(2026, 10, 31, 14, 59, tzinfo=UTC),  # Tokyo: Oct 31 23:59
    datetime(2026, 10, 31, 15, 0, tzinfo=UTC),  # Tokyo: Nov 1 00:00
    datetime(2026, 10, 31, 22, 59, tzinfo=UTC),  # Berlin: Oct 31 23:59 CET
    datetime(2026, 10, 31, 23, 30, tzinfo=UTC),  # Berlin: Nov 1 00:30; the example
    datetime(2026, 11, 1, 6, 59, tzinfo=UTC),  # Los Angeles: Oct 31 23:59 PDT
    datetime(2026, 11, 1, 8, 30, tzinfo=UTC),  # Los Angeles: Nov 1 01:30 PDT (first one)
    datetime(2026, 11, 1, 9, 30, tzinfo=UTC),  # Los Angeles: Nov 1 01:30 PST (repeated hour)
    datetime(2026, 11, 30, 14, 30, tzinfo=UTC),  # Tokyo: Nov 30 23:30
    datetime(2026, 11, 30, 23, 30, tzinfo=UTC),  # Tokyo: Dec 1; Berlin: Dec 1 00:30
    datetime(2026, 12, 1, 7, 30, tzinfo=UTC),  # Los Angeles: Nov 30 23:30 PST
    datetime(2026, 12, 1, 8, 30, tzinfo=UTC),  # Los Angeles: Dec 1 00:30 PST
]
COSTS = [Decimal(2**n) / 100 for n in range(len(MOMENTS))]


def _expected(zone: str, month: date) -> Decimal:
    tz = ZoneInfo(zone)
    return sum(
        (
            cost
            for at, cost in zip(MOMENTS, COSTS, strict=True)
            if at.astimezone(tz).date().replace(day=1) == month
        ),
        Decimal(0),
    )


def _populate(alpha, zone: str) -> None:
    """The calls above, each in its own run (requested at the call) of template ``t``."""
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    n,
                    f"r{n}",
                    "web",
                    "Succeeded",
                    at + timedelta(minutes=1),
                    template_recipe_id="t",
                    requested_at=at,
                    started_at=at,
                    finished_at=at + timedelta(minutes=1),
                )
                for n, at in enumerate(MOMENTS)
            ]
        )
        events_ingest(
            events=[
                llm_event_in(f"e{n}", at, project="web", run_id=f"r{n}", cost=cost)
                for n, (at, cost) in enumerate(zip(MOMENTS, COSTS, strict=True))
            ],
            pricer=pricer_for(alpha.tenant),
        )


def _zone(alpha, monkeypatch, zone: str) -> None:
    monkeypatch.setattr(alpha.tenant, "timezone", alpha.tenant.timezone)  # restored after
    tenant_timezone_set(tenant=alpha.tenant, timezone=zone)


def _csv_ai(response) -> Decimal:
    rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    return sum((Decimal(r["amount_usd"]) for r in rows if r["category"] == "AI"), Decimal(0))


@pytest.mark.parametrize("zone", ZONES)
def test_every_surface_counts_the_tenants_month(alpha, zone, monkeypatch):
    _zone(alpha, monkeypatch, zone)
    _populate(alpha, zone)
    tz = ZoneInfo(zone)
    october, november = _expected(zone, OCTOBER), _expected(zone, NOVEMBER)
    assert october and november and october + november < sum(COSTS)  # edges on both sides
    in_november = datetime(2026, 11, 15, 12, tzinfo=UTC)
    with schema_context(alpha.schema):
        for month, expected in ((OCTOBER, october), (NOVEMBER, november)):
            assert month_cost(tenant=alpha.tenant, month=month).ai == expected
            report = cost_report(tenant=alpha.tenant, period=month)
            assert report.token_cost == expected
            assert sum(r.token_cost for r in report.runs) == expected  # every call is in a run
            summary = cost_summary(tenant=alpha.tenant, period=month, refresh=True)
            assert summary.token_cost == expected
            assert sum(u.total for _, u in summary.by_template) == expected.quantize(
                Decimal("0.01")
            )
            days = usage_selectors.daily_token_cost(
                start=month, end=month.replace(day=28) + timedelta(days=4)
            )
            assert sum(v for d, v in days.items() if d.month == month.month) == expected
        # The overview, budgets (page and alert) on a day of November.
        assert overview(now=in_november, zone=tz).tokens.cost == november
        budget = budget_set(amount=november * 2, thresholds=[50])
        assert budget_status(budget, tenant=alpha.tenant, today=date(2026, 11, 15)).spent == (
            november
        )
        raised = evaluate.budgets_evaluate(now=in_november)
        assert [a.data["spent"] for a in raised] == [str(november.quantize(Decimal("0.01")))]
        assert Alert.objects.get().data["month"] == "2026-11"
        # A week: the tenant's days, any length of period.
        week = period_cost(tenant=alpha.tenant, start=date(2026, 10, 29), end=date(2026, 11, 2))
        assert week.ai == sum(
            (
                c
                for at, c in zip(MOMENTS, COSTS, strict=True)
                if date(2026, 10, 29) <= at.astimezone(tz).date() < date(2026, 11, 2)
            ),
            Decimal(0),
        )
        assert week.allocated_months == {}  # no whole month: infrastructure is not in
    # The APIs and the export.
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    start = datetime(2026, 10, 1, tzinfo=tz).isoformat()
    end = datetime(2026, 12, 1, tzinfo=tz).isoformat()
    costs = client.get(
        "/api/v1/costs", {"granularity": "month", "start": start, "end": end}, **bearer(raw)
    ).json()["results"]
    assert [Decimal(r["token_cost"]) for r in costs] == [october, november]
    assert [r["period_start"] for r in costs] == [
        datetime(2026, m, 1, tzinfo=tz).astimezone(UTC).isoformat().replace("+00:00", "Z")
        for m in (10, 11)
    ]
    # Dates alone are the tenant's days: the same months as its midnights with offsets.
    by_dates = client.get(
        "/api/v1/costs",
        {"granularity": "month", "start": "2026-10-01", "end": "2026-12-01"},
        **bearer(raw),
    ).json()["results"]
    assert by_dates == costs
    usage = client.get(
        "/api/v1/usage", {"start": "2026-11-01", "end": "2026-11-02"}, **bearer(raw)
    ).json()["tokens"]
    assert sum((Decimal(r["cost"]) for r in usage), Decimal(0)) == sum(
        (c for at, c in zip(MOMENTS, COSTS, strict=True) if at.astimezone(tz).date() == NOVEMBER),
        Decimal(0),
    )
    report = client.get("/api/v1/reports/monthly", {"month": "2026-11"}, **bearer(raw)).json()
    assert Decimal(report["token_cost"]) == november
    export = client.get(
        "/api/v1/reports/monthly", {"month": "2026-10", "format": "csv"}, **bearer(raw)
    )
    assert _csv_ai(export) == october.quantize(Decimal("0.01"))
    # Run history: a day filter is the tenant's day.
    page = logged_in_client(alpha.host, alpha.admin_email).get(
        "/runs/", {"from": "2026-11-01", "to": "2026-11-01"}
    )
    listed = {f"r{n}" for n in range(len(MOMENTS)) if f">r{n}<" in page.content.decode()}
    assert listed == {
        f"r{n}" for n, at in enumerate(MOMENTS) if at.astimezone(tz).date() == date(2026, 11, 1)
    }


def test_a_change_of_time_zone_recounts_stored_usage(alpha, monkeypatch):
    _zone(alpha, monkeypatch, "Europe/Berlin")
    _populate(alpha, "Europe/Berlin")
    with schema_context(alpha.schema):
        assert month_cost(tenant=alpha.tenant, month=NOVEMBER).ai == _expected(
            "Europe/Berlin", NOVEMBER
        )
    tenant_timezone_set(tenant=alpha.tenant, timezone="Asia/Tokyo")
    with schema_context(alpha.schema):
        for month in (OCTOBER, NOVEMBER):
            expected = _expected("Asia/Tokyo", month)
            assert month_cost(tenant=alpha.tenant, month=month).ai == expected
            assert cost_report(tenant=alpha.tenant, period=month).token_cost == expected
            runs = usage_selectors.run_status_counts(start=month, end=month_last_day(month))
            assert sum(runs.values()) == sum(
                1
                for at in MOMENTS
                if at.astimezone(ZoneInfo("Asia/Tokyo")).date().replace(day=1) == month
            )
