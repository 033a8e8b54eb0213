"""Usage reports page and the overview's recent success rates and top lists; page access by role;
query counts that do not grow with the data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.accounts.services import user_create
from tests.support import PASSWORD, llm_event_in, logged_in_client, run_update
from usage import selectors
from usage.models import Project
from usage.pricing import pricer_for
from usage.selectors import reporting
from usage.services.ingest import events_ingest

pytestmark = pytest.mark.django_db


def _finished_run(run_id: str, status: str, requested: datetime, minutes: int, **fields) -> None:
    run_update(
        run_id,
        status,
        requested + timedelta(minutes=minutes),
        project=fields.pop("project", "web"),
        requested_at=requested,
        started_at=requested,
        finished_at=requested + timedelta(minutes=minutes),
        **fields,
    )


def _seed_runs(tenant, day: date) -> None:
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    with schema_context(tenant.schema):
        for n in range(6):
            _finished_run(
                f"ok-{n}", "Succeeded", at + timedelta(hours=n), 10, template_recipe_id="spa"
            )
        for n in range(2):
            _finished_run(
                f"bad-{n}", "Failed", at + timedelta(hours=n), 30, template_recipe_id="api"
            )
        _finished_run("ok-next", "Succeeded", at + timedelta(days=1), 20, run_type="docs")


def _user(tenant, email: str, role: str) -> str:
    with schema_context(tenant.schema):
        user_create(email=email, role=role, password=PASSWORD)
    return email


def test_usage_report_reads_runs_and_tokens_from_rollups(alpha):
    day = date(2026, 10, 5)
    _seed_runs(alpha, day)
    with schema_context(alpha.schema):
        at = datetime(2026, 10, 5, 12, tzinfo=UTC)
        events_ingest(
            events=[
                llm_event_in("e1", at, project="web", input_tokens=1000, output_tokens=10),
                llm_event_in("e2", at, project="web", input_tokens=500, output_tokens=5),
                llm_event_in(
                    "e3",
                    at + timedelta(days=2),
                    project="web",
                    model="gpt-4.1-mini",
                    input_tokens=7,
                    output_tokens=3,
                ),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        report = reporting.usage_report(start=day, end=day + timedelta(days=6), grain="day")
        weekly = reporting.usage_report(start=day, end=day + timedelta(days=6), grain="week")

    assert report.total_runs == 9
    first = report.periods[str(day)]
    assert first.by_status["Succeeded"] == 6 and first.by_status["Failed"] == 2
    assert first.success_rate == Decimal("75.0")
    assert report.periods[str(day + timedelta(days=1))].success_rate == Decimal("100.0")
    assert [t.template for t in report.templates][:2] == ["spa", "api"]
    spa = report.templates[0]
    assert (spa.runs, spa.success_rate) == (6, Decimal("100.0"))
    assert report.tokens_by_model["gpt-4.1"] == {str(day): 1515}
    assert report.tokens_by_model["gpt-4.1-mini"] == {str(day + timedelta(days=2)): 10}
    assert report.model_totals[0] == ("gpt-4.1", 2, 1500, 15)
    # Weeks start on Monday: Oct 5 2026 is a Monday, so all nine runs share one week.
    assert list(weekly.periods) == ["2026-10-05"] and weekly.total_runs == 9
    # Median duration of the day's finished runs: six of 10 min, two of 30 min.
    assert 10 * 60_000 <= first.percentile_ms(0.5) < 12 * 60_000


def test_recent_success_rates_count_runs_by_when_they_finished(alpha):
    now = timezone.now()
    with schema_context(alpha.schema):
        _finished_run("a", "Succeeded", now - timedelta(minutes=40), 10)
        _finished_run("b", "Failed", now - timedelta(minutes=50), 20)
        _finished_run("c", "Succeeded", now - timedelta(hours=5), 10)
        _finished_run("d", "Succeeded", now - timedelta(days=3), 10)
        _finished_run("e", "Failed", now - timedelta(days=9), 10)
        rates = reporting.recent_success_rates(now=now)
    assert rates == {"1h": Decimal("50.0"), "24h": Decimal("66.7"), "7d": Decimal("75.0")}


def test_usage_page_shows_report_and_charts(alpha, django_assert_max_num_queries):
    day = timezone.now().date() - timedelta(days=3)
    _seed_runs(alpha, day)
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


def test_overview_shows_recent_success_and_top_projects_and_models(alpha):
    now = timezone.now()
    with schema_context(alpha.schema):
        _finished_run("a", "Succeeded", now - timedelta(minutes=30), 5)
        events_ingest(
            events=[
                llm_event_in("x1", now - timedelta(minutes=5), project="big", cost=Decimal("9")),
                llm_event_in("x2", now - timedelta(minutes=5), project="small", cost=Decimal("1")),
            ],
            pricer=pricer_for(alpha.tenant),
        )
        assert Project.objects.filter(slug="big").exists()
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert "success rate: last hour 100.0%" in page
    top = re.search(r'data-testid="top-projects">(.*?)</table>', page, re.S).group(1)
    assert top.index("big") < top.index("small") and "$9.00" in top
    assert "Usage complete up to" in page


ROLE_MATRIX = {
    # path: (member, finance, admin)
    "/": (200, 200, 200),
    "/runs/": (200, 403, 200),
    "/runs/active/": (200, 403, 200),
    "/runs.csv": (200, 403, 200),
    "/usage/": (200, 403, 200),
    "/costs/": (403, 200, 200),
    "/reports/2026-10/csv": (403, 200, 200),
}


def test_pages_are_enforced_by_role(alpha):
    clients = {
        "member": logged_in_client(alpha.host, _user(alpha, "m@alpha.test", "member")),
        "finance": logged_in_client(alpha.host, _user(alpha, "f@alpha.test", "finance")),
        "admin": logged_in_client(alpha.host, alpha.admin_email),
    }
    seen = {
        path: tuple(clients[role].get(path).status_code for role in ("member", "finance", "admin"))
        for path in ROLE_MATRIX
    }
    assert seen == ROLE_MATRIX
    # The navigation shows exactly the pages a role may open.
    member_nav = clients["member"].get("/").content.decode()
    assert 'href="/usage/"' in member_nav and 'href="/costs/"' not in member_nav
    finance_nav = clients["finance"].get("/").content.decode()
    assert 'href="/costs/"' in finance_nav and 'href="/runs/"' not in finance_nav


def test_anonymous_visitors_are_sent_to_log_in(alpha):
    from tests.support import host_client

    for path in ROLE_MATRIX:
        response = host_client(alpha.host).get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("sort", ["longest", "shortest", "oldest"])
def test_run_history_sorts_and_pages_by_keyset(alpha, sort):
    at = datetime(2026, 10, 1, 8, tzinfo=UTC)
    with schema_context(alpha.schema):
        for n in range(61):
            # Durations repeat (n % 7) so the cursor must break ties by id.
            _finished_run(f"r-{n:02d}", "Succeeded", at + timedelta(minutes=n), 1 + n % 7)
        early = at - timedelta(minutes=1)
        run_update("still-running", "Running", early, project="web", requested_at=early)
    client = logged_in_client(alpha.host, alpha.admin_email)
    seen, query = [], f"sort={sort}"
    for _ in range(10):
        page = client.get(f"/runs/?{query}").content.decode()
        seen += re.findall(r"<code>(r-\d\d|still-running)</code>", page)
        following = re.search(r'href="\?([^"]+)" data-testid="next-page"', page)
        if not following:
            break
        query = following.group(1).replace("&amp;", "&")
    with schema_context(alpha.schema):
        expected = [row.run_id for row in selectors.runs_iter(selectors.RunFilters(), sort=sort)]
    assert len(seen) == len(set(seen)) == len(expected)
    assert seen == expected
    minutes = {f"r-{n:02d}": 1 + n % 7 for n in range(61)}
    if sort in ("longest", "shortest"):
        assert "still-running" not in seen  # no duration yet
        durations = [minutes[run_id] for run_id in seen]
        assert durations == sorted(durations, reverse=sort == "longest")
    else:
        assert seen[0] == "still-running" and seen[1:] == sorted(minutes)


PAGES_WITHOUT_N_PLUS_ONE = ["/", "/runs/", "/runs/active/", "/usage/", "/costs/", "/runs/r-0/"]


@pytest.mark.parametrize("path", PAGES_WITHOUT_N_PLUS_ONE)
def test_page_queries_do_not_grow_with_the_data(alpha, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()

    def add(first: int, count: int) -> None:
        with schema_context(alpha.schema):
            for n in range(first, first + count):
                requested = now - timedelta(hours=n + 1)
                _finished_run(f"r-{n}", "Succeeded", requested, 5, project=f"p{n % 4}")
                events_ingest(
                    events=[
                        llm_event_in(
                            f"e-{n}",
                            requested,
                            project=f"p{n % 4}",
                            run_id=f"r-{n}",
                            model=("gpt-4.1", "gpt-4.1-mini")[n % 2],
                        )
                    ],
                    pricer=pricer_for(alpha.tenant),
                )
            run_update(f"live-{first}", "Running", now, project="p0", requested_at=now)

    client = logged_in_client(alpha.host, alpha.admin_email)
    add(0, 3)
    client.get(path)  # warm caches that are filled once (sessions, cost summary)
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    add(3, 30)
    client.get(path)
    with CaptureQueriesContext(connection) as many:
        assert client.get(path).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_null_characters_in_run_filters_do_not_break_the_page(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    for query in ("q=a%00b", "project=%00", "template=x%00"):
        assert client.get(f"/runs/?{query}").status_code == 200
        assert client.get(f"/runs.csv?{query}").status_code == 200
