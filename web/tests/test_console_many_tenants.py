"""The operator console with many tenants: the list a page at a time, searchable, its figures
read in one query per page (the same figures the per-schema reads give), operators only."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.operator import views as billing_views
from billing.operator.selectors import customer_cost_table
from billing.selectors.periods import month_cost
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from factory_portal.money import usd
from factory_portal.periods import local_date, month_of, zone
from factory_portal.tenants.models import Tenant
from tests.support import host_client, llm_spend, logged_in_client, run_update
from usage import selectors as usage_selectors
from usage.selectors.operator import TenantPeriod, tenants_figures
from web.console import selectors as console_selectors
from web.console import views as console_views

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def alpha_busy(alpha):
    now = timezone.now()
    llm_spend(alpha, now - timedelta(minutes=5), "1.25", "0.0001")
    with schema_context("alpha"):
        run_update("r-live", "Running", now - timedelta(minutes=3), requested_at=now)
        run_update("r-done", "Succeeded", now - timedelta(minutes=2), requested_at=now)
    return alpha


def test_bulk_figures_equal_each_schemas_own_reads(alpha_busy, beta):
    now = timezone.now()
    summaries = {s.tenant.slug: s for s in console_selectors.tenant_summaries(now=now)}
    assert set(summaries) == {"alpha", "beta"}
    for slug in ("alpha", "beta"):
        tenant = Tenant.objects.get(slug=slug)
        today = local_date(now, zone(tenant.timezone))
        with schema_context(slug):
            cost = month_cost(tenant=tenant, month=today).ai
            runs = sum(usage_selectors.run_status_counts(start=month_of(today), end=today).values())
            active = sum(usage_selectors.active_run_counts().values())
            until = usage_selectors.usage_complete_until()
        got = summaries[slug]
        assert (got.month_cost, got.month_runs, got.active_runs, got.complete_until) == (
            cost,
            runs,
            active,
            until,
        )
        assert got.domain == tenant.get_primary_domain().domain
    assert summaries["alpha"].month_cost > 1 and summaries["alpha"].active_runs == 1
    assert summaries["beta"].month_runs == 0 and summaries["beta"].complete_until is None


def test_only_portal_schema_names_reach_the_query():
    today = timezone.now().date()
    with pytest.raises(ValueError, match="Not a tenant schema"):
        tenants_figures([TenantPeriod('alpha"; drop schema beta; --', today, today)])
    assert tenants_figures([]) == {}


def test_a_page_costs_the_same_queries_with_one_tenant_or_two(operator, alpha_busy, beta):
    operator.get("/")  # warm the session and caches
    counts = []
    for size in (1, 2):
        console_views.CONSOLE_PAGE_SIZE = size
        try:
            with CaptureQueriesContext(connection) as queries:
                assert operator.get("/").status_code == 200
        finally:
            console_views.CONSOLE_PAGE_SIZE = console_selectors.CONSOLE_PAGE_SIZE
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_list_is_paged(operator, alpha, beta, monkeypatch):
    monkeypatch.setattr(console_views, "CONSOLE_PAGE_SIZE", 1)
    first = _text(operator.get("/"))
    assert "Alpha Inc" in first and "Beta Inc" not in first
    assert "Page 1 of 2 (2 tenants)" in first and 'href="?page=2"' in first
    second = _text(operator.get("/?page=2"))
    assert "Beta Inc" in second and "Alpha Inc" not in second
    assert 'href="?page=1"' in second
    assert "of the tenants on this page" in second


@pytest.mark.parametrize("page", ["0", "3", "abc", "-1", "9" * 30])
def test_a_page_that_does_not_exist_is_a_clear_400(operator, alpha, beta, monkeypatch, page):
    monkeypatch.setattr(console_views, "CONSOLE_PAGE_SIZE", 1)
    response = operator.get("/", {"page": page})
    assert response.status_code == 400
    text = _text(response)
    assert f"There is no page “{page[:20]}”: pages run from 1 to 2." in text
    assert "Alpha Inc" in text  # the first page instead


def test_a_page_with_a_nul_is_named_without_it(operator, alpha):
    text = _text(operator.get("/", {"page": "2\x00"}))
    assert "There is no page “2”: pages run from 1 to 1." in text


def test_search_by_slug_or_name(operator, alpha, beta):
    by_slug = _text(operator.get("/", {"q": "ALP"}))
    assert "Alpha Inc" in by_slug and "Beta Inc" not in by_slug
    by_name = _text(operator.get("/", {"q": "beta inc"}))
    assert "Beta Inc" in by_name and "Alpha Inc" not in by_name
    none = operator.get("/", {"q": "%_nothing"})
    assert none.status_code == 200
    assert "No tenant's slug or name contains “%_nothing”" in _text(none)
    nul = operator.get("/", {"q": "al\x00pha"})  # PostgreSQL refuses NUL: dropped, not a 500
    assert nul.status_code == 200 and "Alpha Inc" in _text(nul)


def test_search_keeps_to_its_matches_across_pages(operator, alpha, beta, monkeypatch):
    monkeypatch.setattr(console_views, "CONSOLE_PAGE_SIZE", 1)
    page = _text(operator.get("/", {"q": "a"}))  # both match: two pages, the link keeps q
    assert 'href="?page=2&q=a"' in page


def test_only_operators_see_the_list_or_search_it(alpha, public_host):
    anonymous = host_client(public_host)
    response = anonymous.get("/", {"q": "alpha", "page": "1"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    assert tenant_admin.get("/?q=alpha").status_code == 200  # its own dashboard, not the list
    assert "Beta Inc" not in _text(tenant_admin.get("/?q=beta"))
    response = tenant_admin.get("/", {"q": "beta"}, HTTP_HOST=public_host)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    with schema_context("public"):
        user_create(email="viewer@ops.test", role=Role.MEMBER, password="x" * 20)
    viewer = logged_in_client(public_host, "viewer@ops.test", "x" * 20)
    assert viewer.get("/", {"q": "alpha"}).status_code == 403


def test_the_health_page_lists_a_bounded_number_stalest_first(alpha_busy, beta, operator):
    now = timezone.now()
    Tenant.objects.filter(slug="alpha").update(usage_complete_until=now)
    shown = console_selectors.tenant_freshness(now=now, limit=1)
    assert [f.tenant.slug for f in shown] == ["beta"]  # never recorded: first
    both = console_selectors.tenant_freshness(now=now)
    assert [f.tenant.slug for f in both] == ["beta", "alpha"]
    assert both[1].complete_until is not None and not both[1].stale
    page = _text(operator.get("/health/"))
    assert "Alpha Inc" in page and "Beta Inc" in page


def test_the_cost_per_customer_reads_every_schema_in_one_query(operator, alpha_busy, beta):
    """It read each tenant's schema in turn (an operator review: 0.49 s at 300 tenants, one
    query per tenant); its figures are each tenant's own month cost."""

    today = timezone.now().date()
    month = today.replace(day=1)
    table = customer_cost_table(months=[month])
    for customer in table.customers:
        with schema_context(customer.tenant.schema_name):
            own = month_cost(tenant=customer.tenant, month=month).ai
        assert customer.months[month].ai == own
    assert table.customers[0].months[month].ai > 1  # alpha's spend
    with CaptureQueriesContext(connection) as queries:
        assert operator.get("/customer-costs/").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if "usage_llmusagedaily" in q["sql"]]
    assert len(reads) == 1 and '"alpha".' in reads[0] and '"beta".' in reads[0]


def test_the_cost_per_customer_is_paged_and_searchable_with_every_customer_s_totals(
    operator, alpha_busy, beta, monkeypatch
):
    """At ten thousand tenants the page listed every one of them (twice: the month and the
    trend); now a page of customers, searchable, while the totals stay every customer's."""
    monkeypatch.setattr(billing_views, "CUSTOMER_COSTS_PAGE_SIZE", 1)
    month = month_of(timezone.now().date())
    table = customer_cost_table(months=[month])
    total = usd(table.totals[month].total)
    first = operator.get("/customer-costs/")
    assert first.status_code == 200
    text = _text(first)
    assert "Alpha Inc" in text and "Beta Inc" not in text
    assert "Page 1 of 2 (2 customers)" in text and "Total, all 2 customers" in text
    assert 'href="?page=2"' in text and total in text
    second = _text(operator.get("/customer-costs/", {"page": "2", "month": f"{month:%Y-%m}"}))
    assert "Beta Inc" in second and "Alpha Inc" not in second and total in second
    assert f'href="?month={month:%Y-%m}&page=1"' in second
    found = _text(operator.get("/customer-costs/", {"q": "BETA"}))
    assert "Beta Inc" in found and "Alpha Inc" not in found and total in found
    assert "Page 1 of" not in found  # one match, one page
    none = operator.get("/customer-costs/", {"q": "nobody\x00"})
    assert none.status_code == 200
    assert "No tenant's slug or name contains “nobody”" in _text(none)


@pytest.mark.parametrize("page", ["0", "3", "x"])
def test_a_customer_page_that_does_not_exist_is_a_clear_400(
    operator, alpha, beta, monkeypatch, page
):
    monkeypatch.setattr(billing_views, "CUSTOMER_COSTS_PAGE_SIZE", 1)
    response = operator.get("/customer-costs/", {"page": page})
    assert response.status_code == 400
    text = _text(response)
    assert f"There is no page “{page}”: pages run from 1 to 2." in text
    assert "Alpha Inc" in text


def test_only_operators_page_or_search_the_cost_per_customer(alpha, beta, public_host):
    anonymous = host_client(public_host).get("/customer-costs/", {"q": "beta", "page": "1"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    assert tenant_admin.get("/customer-costs/", {"q": "beta"}).status_code == 404
    with schema_context("public"):
        user_create(email="viewer@ops.test", role=Role.MEMBER, password="x" * 20)
    viewer = logged_in_client(public_host, "viewer@ops.test", "x" * 20)
    assert viewer.get("/customer-costs/", {"q": "beta"}).status_code == 403
