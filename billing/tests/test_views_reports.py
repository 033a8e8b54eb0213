"""The reports index: twelve months back across the year, in the tenant's time zone, with a
download link per format."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from billing.views import recent_months
from tests.support import (
    response_text,
)

pytestmark = pytest.mark.django_db


def test_recent_months_cross_the_year():
    months = recent_months(date(2026, 2, 10))
    assert len(months) == 12
    assert months[0] == date(2026, 2, 1) and months[1] == date(2026, 1, 1)
    assert months[2] == date(2025, 12, 1) and months[-1] == date(2025, 3, 1)


def test_reports_index_links_twelve_months_in_the_tenant_timezone(alpha, people, monkeypatch):
    client = people["finance"]
    alpha.tenant.timezone = "Asia/Tokyo"
    alpha.tenant.save(update_fields=["timezone"])
    # 20:00 UTC on Oct 31 is already November 1 in Tokyo.
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 10, 31, 20, tzinfo=UTC))
    page = response_text(client.get("/reports/"))
    assert page.count('data-testid="report-month"') == 12
    for fmt in ("csv", "xlsx", "focus"):
        assert f'href="/reports/2026-11/{fmt}"' in page
        assert f'href="/reports/2025-12/{fmt}"' in page
    assert 'href="/reports/2025-11/csv"' not in page
    current = re.search(r"November 2026.*?</th>", page, re.S).group(0)
    assert "month to date" in current and page.count("month to date") == 1
    monkeypatch.undo()
    download = client.get("/reports/2026-11/csv")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"


def test_months_without_usage_say_so(alpha, people, monkeypatch):
    """Twelve alike links, most of them files with a header and no charge (a UX review): a
    month with neither AI cost nor allocated infrastructure is marked."""
    from decimal import Decimal

    from django_tenants.utils import schema_context

    from tests.support import llm_event_in
    from usage.pricing import pricer_for
    from usage.services.ingest import events_ingest

    with schema_context(alpha.schema):
        events_ingest(
            events=[llm_event_in("o", datetime(2026, 10, 5, tzinfo=UTC), cost=Decimal("1"))],
            pricer=pricer_for(alpha.tenant),
        )
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 20, tzinfo=UTC))
    page = response_text(people["finance"].get("/reports/"))
    marked = {
        month
        for month, row in re.findall(r"<th scope=\"row\">(\w+ \d{4})(.*?)</th>", page, re.S)
        if 'data-testid="no-usage"' in row
    }
    assert "October 2026" not in marked and "November 2026" in marked
    assert len(marked) == 11
