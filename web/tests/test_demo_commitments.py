"""The demo's prepaid commitment: acme's current quarter has a launch credit (used up first) and a
commitment partly consumed, which the forecast runs out before the quarter ends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django_tenants.utils import schema_context

from alerts.tests.test_evaluate_commitments import _forecast
from billing.selectors.commitments import commitments_status
from tests.support import llm_spend, logged_in_client, response_text
from web.demo.billing import demo_commitments

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_the_demo_commitment_is_partly_consumed_and_runs_out_this_quarter(alpha):
    day = date(2026, 10, 1)
    while day < NOW.date():
        llm_spend(alpha, datetime(day.year, day.month, day.day, 9, tzinfo=UTC), "50")
        day += timedelta(days=1)
    with schema_context(alpha.schema):
        _forecast(NOW.date(), "50")
        assert demo_commitments(tenant=alpha.tenant, now=NOW)
        assert demo_commitments(tenant=alpha.tenant, now=NOW) == []  # once
        credit, prepaid = sorted(
            commitments_status(tenant=alpha.tenant, today=NOW.date()),
            key=lambda s: s.commitment.kind != "credit",
        )
    assert credit.state == "exhausted"
    assert prepaid.commitment.start_date == date(2026, 10, 1)
    assert prepaid.commitment.end_date == date(2026, 12, 31)
    assert 0 < prepaid.consumed < prepaid.commitment.amount
    ends = prepaid.exhaustion
    assert ends.earliest <= ends.expected <= ends.latest <= date(2026, 12, 31)
    # The page draws its burn-down with the forecast band and says when it runs out (the page
    # reads today's date: only its shape is checked here).
    page = response_text(logged_in_client(alpha.host, alpha.admin_email).get("/costs/commitments/"))
    assert page.count('data-testid="commitment"') == 2
    assert f'id="burndown-{prepaid.commitment.pk}"' in page
    assert "Launch credit" in page and "used up on" in page
