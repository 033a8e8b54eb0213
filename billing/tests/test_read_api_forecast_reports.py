"""``GET /api/v1/forecast`` and ``GET /api/v1/reports/monthly``: numbers equal the stored forecast
and the finance exports; validation, scopes and isolation."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context
from openpyxl import load_workbook

from billing.models import CostForecast
from billing.selectors.costs import cost_report
from tests.support import bearer, host_client, key_for, llm_event_in
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def _forecast(project: str = "") -> CostForecast:
    start = date(2026, 11, 21)
    daily = [
        [str(start + timedelta(days=n)), "2.00", "1.50", "2.50", "1.00", "3.00", "0", "0", "0"]
        for n in range(90)
    ]
    interval = {"mean": "20.00", "lo80": "15.00", "hi80": "25.00", "lo95": "10.00", "hi95": "30.00"}
    return CostForecast.objects.create(
        project=project,
        computed_at=datetime(2026, 11, 21, 6, tzinfo=UTC),
        method="holt_winters",
        start=start,
        daily=daily,
        month_end=interval,
        next_30=interval,
        next_90=interval,
    )


def test_forecast_with_horizon_and_levels(alpha):
    with schema_context(alpha.schema):
        _forecast()
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    body = client.get("/api/v1/forecast?horizon=7&levels=80", **bearer(raw)).json()
    assert body["scope"] == "tenant" and body["method"] == "holt_winters"
    assert len(body["days"]) == 7 and body["horizon_days"] == 7
    assert body["days"][0] == {"day": "2026-11-21", "mean": "2.00", "lo80": "1.50", "hi80": "2.50"}
    assert body["month_end"] == {"mean": "20.00", "lo80": "15.00", "hi80": "25.00"}
    both = client.get("/api/v1/forecast", **bearer(raw)).json()
    assert len(both["days"]) == 30 and both["days"][0]["hi95"] == "3.00"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("horizon=0", "horizon"),
        ("horizon=91", "horizon"),
        ("levels=50", "levels"),
        ("project=nope", "project"),
    ],
)
def test_forecast_validation(alpha, query, field):
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get(f"/api/v1/forecast?{query}", **bearer(raw))
    assert response.status_code == 400 and field in response.json()["errors"]


def test_no_forecast_yet_is_a_clear_404(alpha):
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get("/api/v1/forecast", **bearer(raw))
    assert response.status_code == 404 and "No forecast yet" in response.json()["detail"]


def test_monthly_report_json_equals_the_exports(alpha):
    at = datetime(2026, 10, 5, tzinfo=UTC)
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                llm_event_in("r1", at, project="web", cost=Decimal("1.2345")),
                llm_event_in("r2", at, project="api", cost=Decimal("2")),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        report = cost_report(tenant=alpha.tenant, period=date(2026, 10, 1))
    _, raw = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    body = client.get("/api/v1/reports/monthly?month=2026-10", **bearer(raw)).json()
    assert Decimal(body["token_cost"]) == report.token_cost == Decimal("3.2345")
    assert [p["project"] for p in body["projects"]] == ["api", "web"]
    xlsx = client.get("/api/v1/reports/monthly?month=2026-10&format=xlsx", **bearer(raw))
    assert xlsx.status_code == 200
    workbook = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content)))
    assert workbook.sheetnames
    csv = client.get("/api/v1/reports/monthly?month=2026-10&format=csv", **bearer(raw))
    assert b"web" in b"".join(csv.streaming_content)
    bad = client.get("/api/v1/reports/monthly?month=2026-13", **bearer(raw))
    assert bad.status_code == 400 and "month" in bad.json()["errors"]


@pytest.mark.parametrize("path", ["/api/v1/forecast", "/api/v1/reports/monthly?month=2026-10"])
def test_scopes_and_isolation(alpha, beta, path):
    with schema_context(alpha.schema):
        _forecast()
    _, ingest = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["read"])
    client = host_client(alpha.host)
    assert client.get(path).status_code in (401, 403)
    assert client.get(path, **bearer(ingest)).status_code == 403
    assert client.get(path, **bearer(beta_key)).status_code == 401
    theirs = host_client(beta.host).get(path, **bearer(beta_key))
    assert theirs.status_code in (200, 404)
    if path.startswith("/api/v1/forecast"):
        assert theirs.status_code == 404  # beta has no forecast; alpha's is not visible
