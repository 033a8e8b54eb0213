"""The overview page (web.dashboards.overview): empty states, recent success rates, top projects
and models."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.domain.forecasting import ForecastDay
from billing.models import CostForecast
from factory_portal.periods import local_date, month_last_day, zone
from tests.support import llm_event_in, logged_in_client, response_text, run_finished
from usage.models import Project
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def test_overview_of_an_empty_tenant_has_empty_states(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert "No forecast yet" in page and "No budget set" in page
    assert "vendor/plotly/plotly.min.js" in page


def test_overview_shows_recent_success_and_top_projects_and_models(alpha):
    now = timezone.now()
    with schema_context(alpha.schema):
        run_finished("a", "Succeeded", now - timedelta(minutes=30), 5)
        events_ingest(
            events=[
                llm_event_in("x1", now - timedelta(minutes=5), project="big", cost=Decimal("9")),
                llm_event_in("x2", now - timedelta(minutes=5), project="small", cost=Decimal("1")),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        assert Project.objects.filter(slug="big").exists()
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert "success rate up to now: last hour 100.0%" in page
    top = re.search(r'data-testid="top-projects">(.*?)</table>', page, re.S).group(1)
    assert top.index("big") < top.index("small") and "$9.00" in top
    assert "Usage complete up to" in page


def _cells(page: str, testid: str) -> list[tuple[str, str]]:
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', page, re.S).group(1)
    return [
        (re.sub(r"<[^>]+>", "", name).strip(), amount)
        for name, amount in re.findall(r"<tr><td>(.*?)</td><td class=\"num\">([^<]+)</td>", table)
    ]


def test_the_top_lists_add_up_to_the_ai_cost_shown_above_them(alpha):
    """Rows in cents by largest remainder, and what a cut list leaves as "Other": the cents on
    the page add up to the AI cost figure (rounded one by one, 3 x 0.335 read 1.02 under a
    figure of 1.01; a review found 732.56 against 732.57 on the demo)."""
    now = timezone.now()
    costs = [("p1", "0.335"), ("p2", "0.335"), ("p3", "0.335"), ("p4", "1"), ("p5", "2")]
    costs += [("p6", "0.004"), ("p7", "0.003")]  # beyond the top five
    with schema_context(alpha.schema):
        events_ingest(
            events=[
                llm_event_in(f"t{n}", now - timedelta(minutes=5), project=p, cost=Decimal(c))
                for n, (p, c) in enumerate(costs)
            ],
            pricer=pricer_for(alpha.tenant),
        )
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    figure = re.search(r'data-testid="mtd-cost">\$([^<]+)<', page).group(1)
    assert figure == "4.01"  # 4.012 exactly
    rows = _cells(page, "top-projects")
    assert [name for name, _ in rows] == ["p5", "p4", "p1", "p2", "p3", "Other projects"]
    assert sum(Decimal(amount.lstrip("$")) for _, amount in rows) == Decimal(figure)
    assert rows[-1] == ("Other projects", "$0.01")
    [(_model, amount)] = _cells(page, "top-models")  # one model: the whole figure, no "Other"
    assert amount == f"${figure}"


def test_calls_and_runs_are_counted_in_words_that_agree(alpha):
    now = timezone.now()
    admin = logged_in_client(alpha.host, alpha.admin_email)
    with schema_context(alpha.schema):
        run_finished("one", "Succeeded", now - timedelta(minutes=30), 5)
        events_ingest(
            events=[llm_event_in("u1", now - timedelta(minutes=5), model="no-such-model")],
            pricer=pricer_for(alpha.tenant),
        )
    page = response_text(admin.get("/"))
    assert "1 call has no price yet (unpriced model)." in page
    assert re.search(r">1 run</a>", page) and ">0 runs<" in page  # runs by status
    with schema_context(alpha.schema):
        events_ingest(
            events=[llm_event_in("u2", now - timedelta(minutes=5), model="no-such-model")],
            pricer=pricer_for(alpha.tenant),
        )
    assert "2 calls have no price yet (unpriced model)." in response_text(admin.get("/"))


# The time range, drill-down and presentation (issue 18).


def _chart(page: str) -> dict:
    match = re.search(r'<script id="daily-cost-data" type="application/json">(.*?)</script>', page)
    assert match, "no daily cost chart"
    return json.loads(match.group(1))


@pytest.fixture
def october(alpha):
    """Two projects' calls and runs on 5 and 20 October 2026."""
    with schema_context(alpha.schema):
        for day, project, cost in ((5, "early", "3"), (20, "late", "4")):
            at = datetime(2026, 10, day, 12, tzinfo=UTC)
            run_finished(f"run-{day}", "Succeeded" if day == 5 else "Failed", at, 5, project)
            events_ingest(
                events=[llm_event_in(f"c{day}", at, project=project, cost=Decimal(cost))],
                pricer=pricer_for(alpha.tenant),
            )
    return alpha


def test_every_card_chart_and_table_follows_the_range(october, people):
    page = response_text(people["admin"].get("/?range=custom&from=2026-10-01&to=2026-10-10"))
    assert "AI cost, 1 Oct to 10 Oct" in page
    assert re.search(r'data-testid="mtd-cost">\$3\.00<', page)
    assert re.search(r'data-testid="mtd-runs">1<', page)
    top = re.search(r'data-testid="top-projects">(.*?)</table>', page, re.S).group(1)
    assert "early" in top and "late" not in top
    chart = _chart(page)
    [bar] = chart["data"]  # no forecast: the range does not reach today
    assert bar["x"][0] == "2026-10-01" and bar["x"][-1] == "2026-10-10"
    assert bar["customdata"][4] == "/runs/?project=early&from=2026-10-05&to=2026-10-05"
    assert "Total cost, this month to date" in page and "Budgets, this month" in page
    whole = response_text(people["admin"].get("/?range=custom&from=2026-10-01&to=2026-10-31"))
    assert re.search(r'data-testid="mtd-cost">\$7\.00<', whole)


def test_drill_down_links_by_role(october, people):
    query = "/?range=custom&from=2026-10-01&to=2026-10-31"
    admin = response_text(people["admin"].get(query))
    assert 'href="/runs/?project=late&amp;from=2026-10-01&amp;to=2026-10-31"' in admin
    assert 'href="/runs/?status=Failed&amp;from=2026-10-01&amp;to=2026-10-31"' in admin
    member = response_text(people["member"].get(query))
    assert 'href="/runs/?status=Succeeded&amp;from=2026-10-01&amp;to=2026-10-31"' in member
    assert "late" not in member  # no costs for a member: no top projects either
    for finance_query in (query, "/", "/?range=7d"):
        finance = response_text(people["finance"].get(finance_query))
        assert 'href="/runs/' not in finance, finance_query  # (run budgets are /budgets/runs/)
        assert "customdata" not in finance
    assert "late" in response_text(people["finance"].get(query))


def test_the_forecast_stays_inside_this_month_and_its_horizon(alpha, people):
    today = local_date(timezone.now(), zone(alpha.tenant.timezone))
    days = [
        ForecastDay(today + timedelta(days=n), *[Decimal("1.00")] * 8).to_json() for n in range(90)
    ]
    interval = {k: "10.00" for k in ("mean", "lo80", "hi80", "lo95", "hi95")}
    with schema_context(alpha.schema):
        CostForecast.objects.create(
            computed_at=timezone.now(),
            method="weekday+ets",
            start=today,
            daily=days,
            month_end=interval,
            next_30=interval,
            next_90=interval,
        )
        events_ingest(
            events=[llm_event_in("t", timezone.now() - timedelta(minutes=1), cost=Decimal(1))],
            pricer=pricer_for(alpha.tenant),
        )
    page = response_text(people["admin"].get("/"))
    forecast = [t for t in _chart(page)["data"] if t.get("type") == "scatter"]
    assert forecast and all(t["x"][-1] == str(month_last_day(today)) for t in forecast)
    assert all(t["x"][0] == str(today) for t in forecast)
    assert "mean of weekday profile and exponential smoothing" in page
    assert "weekday+ets" not in page and "method " not in page
    past = response_text(people["admin"].get("/?range=last_month"))
    assert 'id="daily-cost-data"' not in past or not [
        t for t in _chart(past)["data"] if t.get("type") == "scatter"
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("range=yesterday", "is not a range"),
        ("range=custom&from=31-10-2026", "is not a date"),
        ("from=2026-10-09&to=2026-10-01", "is after the end"),
    ],
)
def test_bad_ranges_are_explained(alpha, query, message):
    response = logged_in_client(alpha.host, alpha.admin_email).get(f"/?{query}")
    assert response.status_code == 200 and message in response_text(response)


def test_another_tenants_projects_never_show(october, beta, people):
    with schema_context(beta.schema):
        events_ingest(
            events=[
                llm_event_in(
                    "b", datetime(2026, 10, 5, 9, tzinfo=UTC), project="beta-only", cost=Decimal(50)
                )
            ],
            pricer=pricer_for(beta.tenant),
        )
    page = response_text(people["admin"].get("/?range=custom&from=2026-10-01&to=2026-10-31"))
    assert "beta-only" not in page and "$57.00" not in page and "$50.00" not in page


def test_a_new_tenant_has_a_sentence_not_an_axis(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert 'data-testid="daily-cost-empty"' in page and 'id="daily-cost-data"' not in page
    assert "$-1" not in page and "-$1" not in page


def test_the_forecast_tile_counts_today_once_as_the_budgets_do(alpha, people):
    """The month in all: the days before today as spent, today's cost so far or its forecast
    whichever is higher, and the days after: the budgets' month-end figure. A review found the
    tile showing the forecast from today on (today included) beside a month to date that
    counts today too: added up, today twice ($1,688.52 against the budgets' $1,682.08)."""
    from billing.models import Budget

    today = local_date(timezone.now(), zone(alpha.tenant.timezone))
    first = ForecastDay(
        today, *map(Decimal, ("1.00", "0.50", "2.00", "0.25", "3.00", "1", "1", "1"))
    )
    later = [ForecastDay(today + timedelta(days=n), *[Decimal("1.00")] * 8) for n in range(1, 90)]
    with schema_context(alpha.schema):
        CostForecast.objects.create(
            computed_at=timezone.now(),
            method="weekday+ets",
            start=today,
            daily=[day.to_json() for day in [first, *later]],
            month_end={"mean": "10.00", "lo80": "6.00", "hi80": "14.00", "lo95": "5", "hi95": "15"},
            next_30={k: "1" for k in ("mean", "lo80", "hi80", "lo95", "hi95")},
            next_90={k: "1" for k in ("mean", "lo80", "hi80", "lo95", "hi95")},
        )
        events_ingest(
            events=[llm_event_in("t", timezone.now() - timedelta(minutes=1), cost=Decimal(3))],
            pricer=pricer_for(alpha.tenant),
        )
        Budget.objects.create(project="", amount=Decimal("100"), thresholds=[80])
    page = response_text(people["admin"].get("/"))
    # 0 before today + max(3 so far, 1 expected) + (10 - 1) for the days after today
    assert re.search(r'data-testid="forecast-month-end">\$12\.00<', page)
    assert "80% interval $8.50 \u2013 $15.00" in page  # max(3, 0.50) + 5.50; max(3, 2) + 12
    budgets = response_text(people["admin"].get("/budgets/"))
    assert "$12.00" in budgets


def test_overview_durations_are_the_usage_reports(alpha):
    """The overview interpolated its median in histogram buckets while the usage page read the
    runs exactly: 22m 47s against 22m 45s for the same days (a UX review). Both follow one
    rule now."""
    from usage.selectors.reporting import usage_report

    now = timezone.now()
    with schema_context(alpha.schema):
        for n, minutes in enumerate((3, 7, 11, 23, 41)):
            run_finished(f"d{n}", "Succeeded", now - timedelta(hours=n + 1), minutes)
        today = now.date()
        report = usage_report(start=today - timedelta(days=1), end=today, grain="day")
    response = logged_in_client(alpha.host, alpha.admin_email).get("/?range=7d")
    durations = response.context["durations"]
    assert durations["p50"] == report.p50_ms == 11 * 60_000
    assert durations["p95"] == report.p95_ms
