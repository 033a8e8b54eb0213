"""Forecasts appear without waiting for the beat: computed on demand by the API and the overview
when missing, and by ``forecast_refresh`` (the command); isolation between tenants."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import CostForecast
from tests.support import bearer, host_client, key_for, llm_event_in, logged_in_client
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def backfill(tenant, *, days: int = 60, project: str = "checkout") -> None:
    """``days`` of history up to yesterday, a weekday pattern."""
    today = timezone.now().date()
    events = []
    for n in range(days):
        day = today - timedelta(days=days - n)
        cost = Decimal("5.00") if day.weekday() < 5 else Decimal("1.00")
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        events.append(llm_event_in(f"bf-{project}-{n}", at, project=project, cost=cost))
    with schema_context(tenant.schema):
        events_ingest(events=events, pricer=pricer_for(tenant.tenant))


def test_api_computes_a_missing_forecast(alpha, beta):
    backfill(alpha)
    _, raw = key_for(alpha, ["read"])
    body = host_client(alpha.host).get("/api/v1/forecast?horizon=7", **bearer(raw)).json()
    assert len(body["days"]) == 7 and Decimal(body["next_30_days"]["mean"]) > 0
    project = host_client(alpha.host).get("/api/v1/forecast?project=checkout", **bearer(raw))
    assert project.status_code == 200 and project.json()["project"] == "checkout"
    with schema_context(alpha.schema):
        assert set(CostForecast.objects.values_list("project", flat=True)) == {"", "checkout"}
    _, theirs = key_for(beta, ["read"])  # beta has no usage: alpha's history is not used
    response = host_client(beta.host).get("/api/v1/forecast", **bearer(theirs))
    assert response.status_code == 404 and "No forecast yet" in response.json()["detail"]
    with schema_context(beta.schema):
        assert not CostForecast.objects.exists()


def test_overview_computes_a_missing_forecast(alpha):
    backfill(alpha)
    response = logged_in_client(alpha.host, alpha.admin_email).get("/")
    assert response.status_code == 200
    assert b'data-testid="forecast-month-end"' in response.content
    with schema_context(alpha.schema):
        assert CostForecast.objects.filter(project="").exists()


def test_command_refreshes_one_tenant_or_all(alpha, beta):
    backfill(alpha)
    out = io.StringIO()
    call_command("forecast_refresh", "--tenant", alpha.schema, stdout=out)
    text = out.getvalue()
    assert "alpha (all projects):" in text and "alpha/checkout:" in text
    assert "2 forecast(s) stored for 1 tenant(s)." in text
    out = io.StringIO()
    call_command("forecast_refresh", "--tenant", "alpha", "--project", "checkout", stdout=out)
    assert "1 forecast(s) stored" in out.getvalue()
    out = io.StringIO()
    call_command("forecast_refresh", stdout=out)
    assert "beta (all projects): no usage" in out.getvalue()
    with pytest.raises(CommandError, match="No tenant"):
        call_command("forecast_refresh", "--tenant", "nobody", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("forecast_refresh", "--tenant", "alpha", "--project", "nope")
