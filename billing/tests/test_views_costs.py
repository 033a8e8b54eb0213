"""The tenant's costs page (billing.views.costs): for finance and admins, forgiving of bad
parameters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.tests.test_costs_exports import month  # noqa: F401  (fixture)
from factory_portal import money, periods
from factory_portal.accounts.models import Role
from factory_portal.accounts.services import user_create
from tests.support import (
    PASSWORD,
    RUNS_START,
    add_llm_call,
    bearer,
    host_client,
    key_for,
    llm_event_in,
    logged_in_client,
    response_text,
    runs_make,
    user_make,
)
from usage.models import Project, Run
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def test_costs_page_is_for_finance_and_admin(alpha):
    runs_make(alpha, 3)
    with schema_context(alpha.schema):
        for n in range(3):  # runs are listed by what they used
            add_llm_call(
                project=Project.objects.get(slug="web"),
                run=Run.objects.get(run_id=f"run-{n:03d}"),
                event_id=f"call-{n}",
                at=RUNS_START + timedelta(minutes=n, seconds=10),
                cost=Decimal("0.25"),
            )
        user_create(email="cfo@alpha.test", role=Role.FINANCE, password=PASSWORD)
        user_create(email="dev@alpha.test", role=Role.MEMBER, password=PASSWORD)
    finance = logged_in_client(alpha.host, "cfo@alpha.test")
    page = finance.get("/costs/?by=template&grain=week&month=2026-11")
    assert page.status_code == 200
    body = page.content.decode()
    assert "react-spa" in body and "Cost per successful run" in body
    assert "No shared cost allocated" in body
    assert finance.get("/costs/?by=nonsense&grain=hour&month=x").status_code == 200
    assert logged_in_client(alpha.host, "dev@alpha.test").get("/costs/").status_code == 403


# The time range, drill-down, reconciliation and presentation (issue 18).

MONEY = r"-?\$[\d,]+\.\d\d"


def _figure(page: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">({MONEY})<', page)
    assert match, f"no {testid} figure"
    return match.group(1)


def _chart(page: str, data_id: str) -> dict:
    match = re.search(rf'<script id="{data_id}" type="application/json">(.*?)</script>', page, re.S)
    assert match, f"no chart {data_id}"
    return json.loads(match.group(1))


def _cents(amount: str) -> str:
    return money.usd(Decimal(amount))


def test_a_calendar_month_equals_the_api_and_the_monthly_report(month, alpha):  # noqa: F811
    """Whether chosen by ?month=, by a custom range of the whole month or by the range control,
    September's AI, infrastructure and total are the API's and the monthly report's, to the
    cent."""
    _, raw = key_for(alpha, ["read"])
    api = host_client(alpha.host)
    costs = api.get(
        "/api/v1/costs?start=2026-09-01&end=2026-10-01&granularity=month", **bearer(raw)
    ).json()["results"][0]
    report = api.get("/api/v1/reports/monthly?month=2026-09", **bearer(raw)).json()
    assert costs["total"] == report["total"]
    admin = logged_in_client(alpha.host, alpha.admin_email)
    for query in ("month=2026-09", "range=custom&from=2026-09-01&to=2026-09-30"):
        page = response_text(admin.get(f"/costs/?{query}"))
        assert _figure(page, "ai-cost") == _cents(report["token_cost"]) == "$15.33"
        assert _figure(page, "infra-cost") == _cents(report["infrastructure_cost"]) == "$100.00"
        assert _figure(page, "total-cost") == _cents(costs["total"]) == "$115.33"
        # Allocation lines: human labels, quantities with their unit, no stored names.
        lines = re.search(r'data-testid="allocation-lines">(.*?)</table>', page, re.S).group(1)
        assert "Usage-based" in lines and "CPU time" in lines and "CPU-seconds" in lines
        assert "Whole pool" in lines
        assert not re.search(r">(usage|cpu_seconds|all)<", lines)
        quantities = re.findall(r'class="num">([^<]*) CPU-seconds<', lines)
        assert quantities and all(re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d\d)?", q) for q in quantities)
        trend = _chart(page, "trend-data")
        assert (
            trend["data"][0]["x"][0] == "2026-09-01" and trend["data"][0]["x"][-1] == "2026-09-30"
        )


def test_a_range_that_is_not_a_month_shows_ai_cost_and_links_the_months(month, alpha):  # noqa: F811
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(admin.get("/costs/?range=custom&from=2026-09-05&to=2026-10-03"))
    assert _figure(page, "ai-cost") == "$15.33"  # every call was on 8 September
    assert 'data-testid="infra-cost"' not in page and 'data-testid="total-cost"' not in page
    note = re.search(r'data-testid="infra-per-month">(.*?)</div>', page, re.S).group(1)
    assert "allocated per calendar month" in note
    assert "range=custom&amp;from=2026-09-01&amp;to=2026-09-30" in note and "October 2026" in note
    assert "How shared cost was allocated" not in page
    # A range without the call day: nothing, said plainly, no chart axis.
    empty = response_text(admin.get("/costs/?range=custom&from=2026-09-10&to=2026-09-12"))
    assert _figure(empty, "ai-cost") == "$0.00" and 'data-testid="trend-empty"' in empty
    assert 'id="trend-data"' not in empty


def test_the_chart_follows_the_chosen_month(alpha):
    """With October chosen the chart shows October (it used to end today, whatever the month)."""
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                llm_event_in(
                    "oct", datetime(2026, 10, 2, 12, tzinfo=UTC), project="web", cost=Decimal("2")
                ),
                llm_event_in(
                    "nov", datetime(2026, 11, 9, 12, tzinfo=UTC), project="web", cost=Decimal("5")
                ),
            ],
            pricer=pricer_for(alpha.tenant),
        )
    admin = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(admin.get("/costs/?month=2026-10"))
    assert _figure(page, "ai-cost") == "$2.00"
    [bar] = _chart(page, "trend-data")["data"]
    assert bar["x"][0] == "2026-10-01" and bar["x"][-1] == "2026-10-31"
    assert sum(bar["y"]) == 2.0
    assert bar["customdata"][1] == "/runs/?project=web&from=2026-10-02&to=2026-10-02"
    assert bar["customdata"][8] == ""  # no cost that day: nothing to open
    weekly = _chart(response_text(admin.get("/costs/?month=2026-10&grain=week")), "trend-data")
    # A week's bar opens the days of that week inside the range.
    assert weekly["data"][0]["x"][0] == "2026-09-28"
    assert weekly["data"][0]["customdata"][0] == "/runs/?project=web&from=2026-10-01&to=2026-10-04"
    monthly = _chart(response_text(admin.get("/costs/?month=2026-10&by=model")), "trend-data")
    # A model's bar opens the runs that called it.
    assert monthly["data"][0]["customdata"][1].startswith("/runs/?model=")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("range=fortnight", "is not a range"),
        ("range=custom&from=2026-13-01&to=2026-10-01", "is not a date"),
        ("range=custom&from=2026-10-09&to=2026-10-01", "is after the end"),
        ("month=2026-13", "is not a month"),
        ("range=custom&from=2020-01-01&to=2026-10-01", "at most 366 days"),
    ],
)
def test_bad_ranges_are_explained_not_a_500(alpha, query, message):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    response = admin.get(f"/costs/?{query}&by=nonsense&grain=hour")
    assert response.status_code == 200
    assert message in response_text(response) and 'role="alert"' in response_text(response)


def test_presets_keep_the_grouping_and_drop_the_month(alpha):
    admin = logged_in_client(alpha.host, alpha.admin_email)
    # Last month (relative to today, so the test holds whatever day it runs) is the month a
    # preset stands for, which the page names with its days.
    first = periods.previous_month(periods.month_of(datetime.now(UTC).date()))
    last = periods.month_last_day(first)
    page = response_text(admin.get(f"/costs/?month={first:%Y-%m}&by=template"))
    presets = re.findall(r'href="\?([^"]*)" data-range="(\w+)"', page)
    assert dict((key, href) for href, key in presets)["7d"] == "by=template&amp;range=7d"
    assert f"{first:%B %Y}" in page
    assert f"(1 {first:%b %Y} to {last.day} {last:%b %Y})" in page
    assert ">Run type<" in page and ">run_type<" not in page


def test_drill_down_links_only_for_roles_that_open_run_history(month, alpha):  # noqa: F811
    user_make(alpha, "cfo@alpha.test", Role.FINANCE)
    admin = response_text(
        logged_in_client(alpha.host, alpha.admin_email).get("/costs/?month=2026-09")
    )
    template = re.search(r'data-testid="by-template">(.*?)</table>', admin, re.S).group(1)
    assert 'href="/runs/?template=react-spa&amp;from=2026-09-01&amp;to=2026-09-30"' in template
    run_type = re.search(r'data-testid="by-run-type">(.*?)</table>', admin, re.S).group(1)
    assert 'href="/runs/?run_type=frontend&amp;from=2026-09-01&amp;to=2026-09-30"' in run_type
    assert "(outside runs)</td>" in template  # cost outside runs has no runs to open
    trend = _chart(admin, "trend-data")
    assert all(
        href.startswith("/runs/?project=") or href == ""
        for bar in trend["data"]
        for href in bar["customdata"]
    )
    assert "/runs/?project=web&from=2026-09-08&to=2026-09-08" in str(trend)
    finance = logged_in_client(alpha.host, "cfo@alpha.test")
    for query in (
        "month=2026-09",
        "month=2026-09&grain=week",
        "range=custom&from=2026-09-02&to=2026-09-20",
    ):
        page = response_text(finance.get(f"/costs/?{query}"))
        assert 'href="/runs/' not in page, query  # (run budgets are /budgets/runs/)
        assert "react-spa" in page


def test_another_tenants_costs_never_show(month, alpha, beta):  # noqa: F811
    with schema_context(beta.schema):
        events_ingest(
            events=[
                llm_event_in(
                    "b1",
                    datetime(2026, 9, 8, 9, tzinfo=UTC),
                    project="beta-secret",
                    cost=Decimal("99"),
                )
            ],
            pricer=pricer_for(beta.tenant),
        )
    for query in ("month=2026-09", "range=custom&from=2026-09-01&to=2026-09-10&by=project"):
        page = response_text(
            logged_in_client(alpha.host, alpha.admin_email).get(f"/costs/?{query}")
        )
        assert "beta-secret" not in page and "$99" not in page and "$114.33" not in page


def test_a_new_tenant_sees_sentences_not_axes(alpha):
    page = response_text(logged_in_client(alpha.host, alpha.admin_email).get("/costs/"))
    assert 'data-testid="trend-empty"' in page and "$-1" not in page and "-$1" not in page
    assert "No runs used anything in this range." in page
