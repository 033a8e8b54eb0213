"""The operator's allocation pages are safe to use: closing a month is a separate, confirmed
action; a draft says when its pools or rules changed after it; the what-if compares methods with
the draft by tenant name, in dollars."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.operator.models import AllocationRule, AllocationRun, CostPool
from billing.operator.services.allocation import allocation_run
from factory_portal.tenants.models import Tenant
from tests.support import logged_in_client
from usage.domain.events import InfraEventIn
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db

PERIOD = date(2026, 9, 1)
AT = datetime(2026, 9, 10, 12, tzinfo=UTC)


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _cpu(tenant, project: str, seconds: str, event_id: str) -> None:
    with schema_context(tenant.schema):
        events_ingest(
            events=[
                InfraEventIn(
                    position=0,
                    event_id=event_id,
                    occurred_at=AT,
                    project=project,
                    run_id="",
                    job_id="",
                    tenant="",
                    resource_type="compute",
                    quantity=Decimal(seconds),
                    unit="cpu_seconds",
                )
            ],
            pricer=pricer_for(tenant.tenant),
        )


def _pool(amount: str, name: str = "AWS Compute") -> CostPool:
    return CostPool.objects.create(
        period=PERIOD,
        name=name,
        provider="AWS",
        service_category="Compute",
        charge_category="Usage",
        currency="USD",
        billed_cost=Decimal(amount),
        effective_cost=Decimal(amount),
        list_cost=Decimal(amount),
        rows=1,
    )


@pytest.fixture
def usage(alpha, beta):
    Tenant.objects.filter(slug="alpha").update(name="Alpha Robotics")
    Tenant.objects.filter(slug="beta").update(name="Beta Labs")
    _cpu(alpha, "web", "300", "a1")
    _cpu(beta, "etl", "100", "b1")
    _pool("100.00")
    return alpha, beta


# --- closing a month ------------------------------------------------------------------------


def test_the_draft_button_never_closes(operator, usage):
    page = _text(operator.get("/allocation/2026-09/"))
    assert 'data-testid="allocate-draft"' in page and "Allocate (draft)" in page
    # The close is a link to its own page, in a visibly separate zone, not a second button.
    assert 'class="danger-link" href="/allocation/2026-09/close"' in page
    assert 'name="close"' not in page
    assert operator.post("/allocation/2026-09/run").status_code == 302
    assert AllocationRun.objects.get(period=PERIOD).status == "draft"
    # The old "close=1" field of the draft form closes nothing any more.
    response = operator.post("/allocation/2026-09/run", {"close": "1"})
    assert response.status_code == 302 and response["Location"] == "/allocation/2026-09/close"
    assert AllocationRun.objects.get(period=PERIOD).status == "draft"


def test_closing_needs_the_month_typed(operator, usage):
    confirm = _text(operator.get("/allocation/2026-09/close"))
    assert "Close September 2026?" in confirm and "It cannot be undone." in confirm
    assert 'class="danger"' in confirm and "Type the month to close (YYYY-MM)" in confirm
    assert not AllocationRun.objects.exists()  # looking at the page changes nothing
    for typed in ("", "september", "2026-09\x00", "2026-10"):
        refused = operator.post("/allocation/2026-09/close", {"confirm_month": typed})
        assert refused.status_code == 400
        assert not AllocationRun.objects.exists()
    assert "Type 2026-09 exactly to close this month." in _text(refused)
    closed = operator.post("/allocation/2026-09/close", {"confirm_month": " 2026-09 "})
    assert closed.status_code == 302 and closed["Location"] == "/allocation/2026-09/"
    run = AllocationRun.objects.get(period=PERIOD)
    assert run.status == "closed" and run.closed_at is not None
    page = _text(operator.get("/allocation/2026-09/"))
    assert "Closed, computed" in page and 'data-testid="close-zone"' not in page
    again = operator.get("/allocation/2026-09/close")
    assert again.status_code == 302  # already closed: back to the period
    assert operator.post("/allocation/2026-09/close", {"confirm_month": "2026-09"}).status_code == (
        302
    )


@pytest.mark.parametrize("period", ["2026-13", "nope", "1999-01", "2026-09\x00"])
def test_close_page_with_a_bad_period_is_404(operator, period):
    assert operator.get(f"/allocation/{period}/close").status_code == 404
    assert operator.post(f"/allocation/{period}/close", {"confirm_month": period}).status_code == (
        404
    )


def test_only_the_operator_reaches_the_close_page(usage, client, public_host):
    alpha, _ = usage
    tenant_admin = logged_in_client(alpha.host, alpha.admin_email)
    assert tenant_admin.get("/allocation/2026-09/close").status_code == 404
    assert tenant_admin.post(
        "/allocation/2026-09/close", {"confirm_month": "2026-09"}
    ).status_code in (
        403,
        404,
    )
    anonymous = client.get("/allocation/2026-09/close", HTTP_HOST=public_host)
    assert anonymous.status_code in (302, 403, 404)
    assert not AllocationRun.objects.exists()


# --- stale drafts ---------------------------------------------------------------------------


def test_a_draft_is_out_of_date_after_a_new_pool_or_rule(operator, usage):
    allocation_run(period=PERIOD)
    assert 'data-testid="stale"' not in _text(operator.get("/allocation/2026-09/"))
    assert 'data-testid="stale"' not in _text(operator.get("/allocation/"))

    pool = _pool("50.00", name="AWS Compute (late bill)")
    later = timezone_now_plus(minutes=5)
    CostPool.objects.filter(pk=pool.pk).update(created_at=later)
    page = _text(operator.get("/allocation/2026-09/"))
    assert f"Out of date: cost pools changed after this draft ({later:%Y-%m-%d %H:%M} UTC" in page
    assert "out of date: cost pools changed" in _text(operator.get("/allocation/"))
    assert "Out of date" in _text(operator.get("/allocation/2026-09/close"))

    allocation_run(period=PERIOD)  # recomputed: up to date again
    AllocationRun.objects.update(computed_at=later + timedelta(minutes=1))
    assert 'data-testid="stale"' not in _text(operator.get("/allocation/2026-09/"))

    rule = AllocationRule.objects.create(name="by runs", method="proportional", driver="runs")
    AllocationRule.objects.filter(pk=rule.pk).update(updated_at=later + timedelta(minutes=2))
    assert "Out of date: allocation rules changed" in _text(operator.get("/allocation/2026-09/"))

    allocation_run(period=PERIOD, close=True)  # a closed month is never "out of date"
    assert 'data-testid="stale"' not in _text(operator.get("/allocation/2026-09/"))


def timezone_now_plus(**delta: int) -> datetime:
    from django.utils import timezone

    return timezone.now() + timedelta(**delta)


# --- what-if ----------------------------------------------------------------------------------


def test_what_if_names_tenants_and_methods_and_shows_differences(operator, usage):
    allocation_run(period=PERIOD)  # 100.00 by CPU seconds: alpha 75.00, beta 25.00
    page = _text(operator.get("/allocation/2026-09/?what_if=1"))
    table = page[page.index('data-testid="what-if-table"') :]
    assert "Alpha Robotics" in table and "Beta Labs" in table
    assert ">alpha<" not in table and ">beta<" not in table
    for label in (
        "Current rules (a new draft)",
        "Usage-based (each pool's usage driver)",
        "Proportional (by runs)",
        "Fixed + variable (a quarter evenly, the rest by usage)",
    ):
        assert label in table
    assert "fixed_variable" not in page and "proportional<" not in page
    alpha_row = re.search(r"<tr><td>Alpha Robotics</td>(.*?)</tr>", table).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', alpha_row)
    assert cells[0] == "$75.00"  # the draft
    assert cells[1].startswith("$75.00") and "$0.00" in cells[1]  # current rules = the draft
    # Proportional by runs: nobody has runs, so everything is unallocated: -75.00 for alpha.
    assert cells[3].startswith("$0.00") and "-$75.00" in cells[3]
    # Fixed + variable: 25.00 evenly (12.50 each) + 75.00 by CPU (56.25): 68.75, 6.25 less.
    assert cells[4].startswith("$68.75") and "-$6.25" in cells[4]
    beta_row = re.search(r"<tr><td>Beta Labs</td>(.*?)</tr>", table).group(1)
    assert "+$6.25" in beta_row  # 12.50 + 18.75 = 31.25 against 25.00

    # After a late bill the draft is out of date, and the what-if says so and shows it.
    _pool("40.00", name="AWS Compute (late bill)")
    CostPool.objects.filter(name__contains="late").update(created_at=timezone_now_plus(minutes=5))
    page = _text(operator.get("/allocation/2026-09/?what_if=1"))
    assert "is out of date, so “Current rules” differs from it too" in page
    table = page[page.index('data-testid="what-if-table"') :]
    alpha_row = re.search(r"<tr><td>Alpha Robotics</td>(.*?)</tr>", table).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', alpha_row)
    assert cells[1].startswith("$105.00") and "+$30.00" in cells[1]


def test_what_if_without_a_run_or_pools(operator, alpha):
    page = _text(operator.get("/allocation/2026-09/?what_if=1"))
    assert "No pools for this period: nothing to compare." in page
    assert operator.get("/allocation/2026-09/?what_if=%00").status_code == 200


# --- many tenants -------------------------------------------------------------------------------


def test_the_tenants_shares_and_the_what_if_are_paged_and_searchable(operator, usage, monkeypatch):
    """At ten thousand tenants both lists had a row for each on one page."""
    from billing.operator import views

    monkeypatch.setattr(views, "ALLOCATION_PAGE_SIZE", 1)
    monkeypatch.setattr(views, "SEARCH_FROM", 1)
    allocation_run(period=PERIOD)
    first = _text(operator.get("/allocation/2026-09/?what_if=1"))
    shares = first[first.index("tenants-heading") : first.index("what-if-heading")]
    assert "Alpha Robotics" in shares and "Beta Labs" not in shares
    assert "Page 1 of 2 (2 rows)" in shares
    assert 'href="?what_if=1&page=2"' in shares
    what_if = first[first.index("what-if-heading") :]
    assert 'href="?what_if=1&what_if_page=2#what-if"' in what_if
    second = _text(operator.get("/allocation/2026-09/", {"what_if": "1", "what_if_page": "2"}))
    table = second[second.index('data-testid="what-if-table"') :]
    assert "Beta Labs" in table and "Alpha Robotics" not in table
    found = _text(operator.get("/allocation/2026-09/", {"what_if": "1", "q": "BETA"}))
    assert 'name="q" value="BETA"' in found
    shares = found[found.index("tenants-heading") : found.index("what-if-heading")]
    assert "Beta Labs" in shares and "Alpha Robotics" not in shares and "Page 1 of" not in shares
    Tenant.objects.filter(slug="beta").update(name="B Laboratories")
    by_slug = _text(operator.get("/allocation/2026-09/", {"what_if": "1", "q": "beta"}))
    assert by_slug.count("B Laboratories") == 2 and "Alpha Robotics" not in by_slug
    none = _text(operator.get("/allocation/2026-09/", {"what_if": "1", "q": "gamma"}))
    assert none.count("No tenant's name contains “gamma”") == 2


@pytest.mark.parametrize("name", ["page", "what_if_page"])
def test_an_allocation_page_that_does_not_exist_is_a_clear_400(operator, usage, name):
    allocation_run(period=PERIOD)
    response = operator.get("/allocation/2026-09/", {"what_if": "1", name: "7"})
    assert response.status_code == 400
    assert "There is no page “7”: pages run from 1 to 1." in _text(response)
    assert "Alpha Robotics" in _text(response)


def test_only_operators_page_or_search_allocations(alpha, public_host):
    from tests.support import host_client

    anonymous = host_client(public_host).get("/allocation/2026-09/", {"q": "a", "page": "2"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    admin = logged_in_client(alpha.host, alpha.admin_email)
    assert admin.get("/allocation/2026-09/", {"q": "beta"}).status_code == 404
