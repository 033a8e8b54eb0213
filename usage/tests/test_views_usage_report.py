"""The usage report page (usage.views.usage_report): figures and charts, bad ranges explained,
empty states."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import logged_in_client, report_runs_make

pytestmark = pytest.mark.django_db


def test_usage_page_shows_report_and_charts(alpha, django_assert_max_num_queries):
    day = timezone.now().date() - timedelta(days=3)
    report_runs_make(alpha, day)
    client = logged_in_client(alpha.host, alpha.admin_email)
    with django_assert_max_num_queries(14):
        page = client.get("/usage/").content.decode()
    assert re.search(r'data-testid="usage-runs">9<', page)
    assert 'data-figure="run-volume-data"' in page and 'id="tokens-data"' not in page
    assert "No LLM calls in this range" in page
    assert '<td>spa</td><td class="num">6</td>' in page


def test_usage_page_explains_bad_ranges_instead_of_failing(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/usage/?from=yesterday&grain=fortnight").content.decode()
    assert "&#x27;yesterday&#x27; is not a date" in page
    page = client.get("/usage/?from=2020-01-01&to=2026-01-01").content.decode()
    assert "at most 366 days" in page
    page = client.get("/usage/?from=2026-02-01&to=2026-01-01").content.decode()
    assert "start date is after the end date" in page


def test_usage_page_of_an_empty_tenant_has_empty_states(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/usage/").content.decode()
    assert "No runs in this range" in page and "No LLM calls in this range" in page
    assert "No usage received yet" in page  # the freshness line of every page
