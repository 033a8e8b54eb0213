"""Periods whose raw events are past retention: re-pricing, report files and a change of time zone
are refused clearly; what the run ledger and rollups serve (the monthly report JSON) still works."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_timezone_set
from tests.support import PASSWORD, bearer, host_client, key_for, llm_event_in, logged_in_client
from usage.domain.retention import RawEventsExpired
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.reprice import llm_reprice

pytestmark = pytest.mark.django_db

KEPT_FROM = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def expired(alpha):
    """alpha with calls in September and October 2026; raw events kept from 1 October."""
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                llm_event_in("sep", datetime(2026, 9, 10, tzinfo=UTC), cost=Decimal("1.5")),
                llm_event_in("oct", datetime(2026, 10, 10, tzinfo=UTC), cost=Decimal("2")),
            ],
            pricer=pricer_for(alpha.tenant),
        )
    Tenant.objects.filter(pk=alpha.tenant.pk).update(raw_retained_from=KEPT_FROM)
    alpha.tenant.refresh_from_db()
    return alpha


def test_reprice_refuses_a_period_that_begins_before_retained_raw_events(expired):
    with schema_context(expired.schema), pytest.raises(RawEventsExpired, match="are gone"):
        llm_reprice(
            start=datetime(2026, 9, 1, tzinfo=UTC),
            end=datetime(2026, 11, 1, tzinfo=UTC),
            pricer=pricer_for(expired.tenant),
            reason="fix",
        )
    with schema_context(expired.schema):
        result = llm_reprice(
            start=KEPT_FROM,
            end=datetime(2026, 11, 1, tzinfo=UTC),
            pricer=pricer_for(expired.tenant),
            reason="fix",
        )
    assert result.examined == 0  # client-supplied costs are never re-priced; not refused


def test_reprice_command_says_which_tenant_was_refused(expired):
    with pytest.raises(CommandError, match="alpha: The raw usage events of this period are gone"):
        call_command(
            "reprice", "--tenant", "alpha", "--start", "2026-09-01", "--end", "2026-10-01",
            "--reason", "fix",
        )  # fmt: skip


def test_report_files_are_gone_but_the_json_report_is_served(expired, beta):
    with schema_context(expired.schema):
        user_create(email="cfo@alpha.test", role=Role.FINANCE, password=PASSWORD)
    finance = logged_in_client(expired.host, "cfo@alpha.test")
    page = finance.get("/reports/2026-09/csv")
    assert page.status_code == 410
    assert "no longer available" in page.content.decode()
    assert finance.get("/reports/2026-10/csv").status_code == 200

    _, raw = key_for(expired, ["read"])
    client = host_client(expired.host)
    gone = client.get("/api/v1/reports/monthly?month=2026-09&format=csv", **bearer(raw))
    assert gone.status_code == 410
    assert gone["Content-Type"] == "application/problem+json"
    assert "kept from 2026-10-01" in gone.json()["detail"]
    body = client.get("/api/v1/reports/monthly?month=2026-09", **bearer(raw)).json()
    assert Decimal(body["token_cost"]) == Decimal("1.5")  # the ledger keeps September's total
    # beta keeps everything: its September file is there
    _, beta_raw = key_for(beta, ["read"])
    beta_file = host_client(beta.host).get(
        "/api/v1/reports/monthly?month=2026-09&format=csv", **bearer(beta_raw)
    )
    assert beta_file.status_code == 200


def test_report_command_refuses_the_file(expired, tmp_path):
    with pytest.raises(CommandError, match="alpha 2026-09: The raw usage events"):
        call_command(
            "report", "--tenant", "alpha", "--month", "2026-09", "-o", str(tmp_path / "r.csv")
        )


def test_time_zone_change_is_refused_once_counted_raw_events_are_gone(expired):
    with pytest.raises(ValidationError, match="cannot change"):
        tenant_timezone_set(tenant=expired.tenant, timezone="Europe/Berlin")
    expired.tenant.refresh_from_db()
    assert expired.tenant.timezone == "UTC"


def test_time_zone_change_still_works_when_nothing_counted_was_dropped(alpha):
    Tenant.objects.filter(pk=alpha.tenant.pk).update(raw_retained_from=KEPT_FROM)
    alpha.tenant.refresh_from_db()
    tenant_timezone_set(tenant=alpha.tenant, timezone="Europe/Berlin")
    alpha.tenant.refresh_from_db()
    assert alpha.tenant.timezone == "Europe/Berlin"
