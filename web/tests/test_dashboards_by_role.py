"""The overview shows each role only the areas of the role table: a member (runs, no costs) sees
no cost, forecast or budget; a finance user (costs, no runs) sees no run ids or run figures. The
pages already refused them; the overview printed both to everyone."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Budget
from factory_portal.accounts.services import user_create
from tests.support import PASSWORD, llm_event_in, logged_in_client, run_update
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

COST_PARTS = ['data-testid="mtd-cost"', "AI cost forecast, whole month", "$1,234.00", "$7.25"]
RUN_PARTS = ['data-testid="mtd-runs"', 'data-testid="active-runs"', "secret-run-7", "Run duration"]


@pytest.fixture
def pages(alpha):
    now = timezone.now()
    with schema_context(alpha.schema):
        for email, role in (("m@alpha.test", "member"), ("f@alpha.test", "finance")):
            user_create(email=email, role=role, password=PASSWORD)
        run_update("secret-run-7", "Running", now, requested_at=now, started_at=now)
        call = llm_event_in("e1", now - timedelta(minutes=1), cost=Decimal("7.25"))
        events_ingest(events=[call], pricer=pricer_for(alpha.tenant))
        Budget.objects.create(project="", amount=Decimal("1234"), thresholds=[80])
    return {
        role: logged_in_client(alpha.host, email).get("/").content.decode()
        for role, email in (
            ("member", "m@alpha.test"),
            ("finance", "f@alpha.test"),
            ("admin", alpha.admin_email),
        )
    }


def test_member_overview_has_runs_and_no_costs(pages):
    assert all(part in pages["member"] for part in RUN_PARTS)
    assert not [part for part in COST_PARTS if part in pages["member"]]


def test_finance_overview_has_costs_and_no_runs(pages):
    assert all(part in pages["finance"] for part in COST_PARTS)
    assert not [part for part in RUN_PARTS if part in pages["finance"]]


def test_admin_overview_has_everything(pages):
    assert all(part in pages["admin"] for part in COST_PARTS + RUN_PARTS)
