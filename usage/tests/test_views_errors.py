"""The errors pages and GET /api/v1/errors: content, empty state, bad input, roles, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.support import bearer, host_client, key_for, logged_in_client, user_make
from usage.domain.errors import fingerprint
from usage.tests.errors_data import GO_PANIC, error_make

pytestmark = pytest.mark.django_db

MESSAGE = "manifest 'a.yaml' conflicts with revision 41"  # error_make's
DEPLOY = fingerprint("DeployConflict", MESSAGE, GO_PANIC).value


def _recent(hours: int = 1) -> datetime:
    return timezone.now().replace(microsecond=0) - timedelta(hours=hours)


def test_the_list_shows_groups_with_trend_links_and_a_chart(alpha):
    error_make(alpha, "r-1", _recent(), message="manifest 'a.yaml' conflicts with revision 41")
    error_make(alpha, "r/2", _recent(2), span="s2", template="react-spa")
    page = logged_in_client(alpha.host, alpha.admin_email).get("/errors/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "DeployConflict" in html and "manifest &lt;str&gt; conflicts" in html
    assert "github.com/acme/factory/steps.(*Deployer).Apply (steps/deploy.go)" in html
    assert 'href="/runs/r-1/"' in html and 'href="/runs/r%2F2/"' in html
    assert f"/runs/?error={DEPLOY}&amp;from=" in html
    assert 'data-figure="error-trend-data"' in html and "<polyline points=" in html
    assert 'data-testid="error-count">2<' in html
    assert "<script>" not in html.replace('<script id="error-trend-data"', "")
    # Each day's bar of a group opens that day's runs that reported it.
    chart = page.context["chart"]
    hrefs = [h for trace in chart["data"] for h in trace.get("customdata") or []]
    assert hrefs and all(h.startswith("/runs/?error=") and "&from=" in h for h in hrefs)
    assert 'data-range="7d"' in html and 'aria-current="page">30 days' in html


def test_a_groups_runs_link_lists_the_runs_that_reported_it(alpha):
    """The link opened the days' failed runs, most without the error, and missed runs that
    reported it and then succeeded on a retry (a UX review found it)."""
    from django_tenants.utils import schema_context

    from tests.support import run_update

    error_make(alpha, "has-it", _recent())
    error_make(alpha, "other-error", _recent(), error_type="Timeout", span="s9")
    with schema_context(alpha.schema):
        run_update("has-it", "Succeeded", _recent(0))  # retried, then succeeded
        run_update("failed-plain", "Failed", _recent())
    client = logged_in_client(alpha.host, alpha.admin_email)
    listing = client.get("/errors/")
    [row] = [r for r in listing.context["rows"] if r["group"].fingerprint == DEPLOY]
    runs = client.get(row["failing_runs"]).content.decode()
    listed = {r for r in ("has-it", "other-error", "failed-plain") if f">{r}<" in runs}
    assert listed == {"has-it"}
    assert 'data-testid="error-filter"' in runs and f'href="/errors/{DEPLOY}/"' in runs
    upper = client.get(f"/runs/?error={DEPLOY.upper()}").content.decode()  # any letter case
    assert 'data-testid="error-filter"' in upper
    bad = client.get("/runs/?error=not-a-fingerprint%2F")
    assert bad.status_code == 200 and "is not an error group" in bad.content.decode()
    assert client.get("/runs.csv?error=not-a-fingerprint").status_code == 400  # not every run


def test_the_detail_page_shows_the_error_and_its_stack_trace(alpha):
    error_make(alpha, "r-1", _recent(), message="manifest 'a.yaml' conflicts with revision 41")
    client = logged_in_client(alpha.host, alpha.admin_email)
    listing = client.get("/errors/").content.decode()
    assert f'href="/errors/{DEPLOY}/?range=30d' in listing
    html = client.get(f"/errors/{DEPLOY}/").content.decode()
    assert "manifest &#x27;a.yaml&#x27; conflicts with revision 41" in html  # the latest, as sent
    assert '<details class="stacktrace"' in html and "main.go:19" in html
    assert 'data-testid="group-breakdown"' in html and "python-fastapi-service" in html
    assert 'href="/runs/r-1/"' in html


def test_empty_state_and_unknown_groups(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    html = client.get("/errors/").content.decode()
    assert 'data-testid="errors-empty"' in html and "exception.stacktrace" in html
    assert client.get(f"/errors/{DEPLOY}/").status_code == 404
    assert client.get("/errors/not-a-fingerprint/").status_code == 404


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2026-13-01", "is not a date"),
        ("from=2026-11-10&to=2026-11-01", "is after the end"),
        ("from=2001-01-01&to=2026-11-01", "at most 366 days"),
        ("sort=nope&page=abc", None),
        ("page=99999999999999999999", None),
    ],
)
def test_bad_queries_fall_back_with_a_reason(alpha, query, words):
    error_make(alpha, "r-1", _recent())
    response = logged_in_client(alpha.host, alpha.admin_email).get(f"/errors/?{query}")
    assert response.status_code == 200
    if words:
        assert words in response.content.decode()


def test_pages_are_for_roles_that_see_runs(alpha):
    error_make(alpha, "r-1", _recent())
    member = logged_in_client(alpha.host, user_make(alpha, "m@alpha.test", "member").email)
    finance = logged_in_client(alpha.host, user_make(alpha, "f@alpha.test", "finance").email)
    assert member.get("/errors/").status_code == 200
    assert member.get(f"/errors/{DEPLOY}/").status_code == 200
    assert finance.get("/errors/").status_code == 403
    assert finance.get(f"/errors/{DEPLOY}/").status_code == 403
    assert host_client(alpha.host).get("/errors/").status_code == 302


def test_another_tenants_errors_are_never_shown(alpha, beta):
    error_make(beta, "beta-run", _recent(), error_type="BetaOnlyError")
    beta_print = fingerprint("BetaOnlyError", MESSAGE, GO_PANIC).value
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert "BetaOnlyError" not in client.get("/errors/").content.decode()
    assert client.get(f"/errors/{beta_print}/").status_code == 404
    _, key = key_for(alpha, ["read"])
    answer = host_client(alpha.host).get("/api/v1/errors", **bearer(key)).json()
    assert answer["results"] == [] and answer["total"] == 0
    # Beta's own key sees it; beta's key on alpha's host is refused.
    _, beta_key = key_for(beta, ["read"])
    assert host_client(beta.host).get("/api/v1/errors", **bearer(beta_key)).json()["total"] == 1
    assert host_client(alpha.host).get("/api/v1/errors", **bearer(beta_key)).status_code == 401


def test_the_api_lists_groups_in_pages(alpha):
    at = datetime(2026, 11, 10, 12, tzinfo=UTC)
    error_make(alpha, "r-1", at)
    error_make(alpha, "r-2", at, error_type="Quota", message="quota", span="s2")
    error_make(alpha, "r-3", at, error_type="Quota", message="quota", span="s3")
    _, key = key_for(alpha, ["read"])
    client = host_client(alpha.host)
    answer = client.get(
        "/api/v1/errors?start=2026-11-09&end=2026-11-11&limit=1", **bearer(key)
    ).json()
    assert (answer["total"], answer["errors"]) == (2, 3)
    group = answer["results"][0]
    assert (group["type"], group["count"], group["runs"]) == ("Quota", 2, 2)
    assert group["trend"] == [0, 2, 0] and group["first_seen"] == "2026-11-10T12:00:00Z"
    assert sorted(group["example_run_ids"]) == ["r-2", "r-3"]
    second = client.get(answer["next"], **bearer(key)).json()
    assert second["results"][0]["type"] == "DeployConflict" and second["next_cursor"] is None
    numbered = client.get(
        "/api/v1/errors?start=2026-11-09&end=2026-11-11&limit=1&page=2", **bearer(key)
    )
    assert numbered.json()["results"][0]["type"] == "DeployConflict"
    assert (numbered.json()["page"], numbered.json()["pages"]) == (2, 2)
    assert numbered["Deprecation"].startswith("@")


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-11-10&end=2026-11-01",
        "start=nope",
        "sort=nope",
        "page=0",
        "limit=500",
        "start=2001-01-01&end=2026-01-01",
    ],
)
def test_the_api_refuses_bad_queries_with_a_problem(alpha, query):
    _, key = key_for(alpha, ["read"])
    response = host_client(alpha.host).get(f"/api/v1/errors?{query}", **bearer(key))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")


def test_the_api_is_in_the_openapi_schema(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/errors"]["get"]
    assert operation["operationId"] == "errors_list"
    assert {p["name"] for p in operation["parameters"]} >= {"start", "end", "sort", "page", "limit"}


def test_groups_alike_in_their_first_words_are_each_charted(alpha):
    """Three groups of one type whose messages differ only after 40 characters: three series,
    told apart by their place in the table (a review found them drawn as one, the last)."""
    start = "Rate limit reached for requests in this organization"
    for n, tail in enumerate(("try again later", "contact support", "upgrade your plan")):
        for k in range(n + 1):
            error_make(
                alpha,
                f"rl-{n}-{k}",
                _recent(k + 1),
                error_type="RateLimitError",
                message=f"{start}: {tail}",
                span=f"s{n}{k}",
            )
    page = logged_in_client(alpha.host, alpha.admin_email).get("/errors/")
    names = [trace["name"] for trace in page.context["chart"]["data"]]
    assert len(names) == len(set(names)) == 3
    assert all(name.startswith(f"RateLimitError: {start[:40]}") for name in names)
    assert {name[-4:] for name in names} == {"(#1)", "(#2)", "(#3)"}
