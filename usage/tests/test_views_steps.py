"""The steps page and ``GET /api/v1/steps``: figures, range presets and bounds, sorting and
grouping in the URL, drill-down links, the empty state, bad input; and run history's step and
failure-type filters (page, CSV and API) with the case-insensitive status filter."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.support import bearer, key_for, logged_in_client, response_text
from usage.domain.runs import JobUpdate, RunUpdate
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db


def _job(job_id, attempt, step, status, at, failure=None):
    return JobUpdate(
        job_id=job_id,
        attempt=attempt,
        status=status,
        timestamp=at + timedelta(seconds=30),
        step_name=step,
        started_at=at,
        finished_at=at + timedelta(seconds=30),
        failure_type=failure,
    )


def _runs(tenant) -> None:
    """Three runs of the last days: one reworked its tests, one failed to build."""
    at = timezone.now() - timedelta(days=1)
    specs = [
        (
            "ok-run",
            "Succeeded",
            "spa",
            None,
            [
                _job("b", 1, "build", "Succeeded", at),
                _job("t", 1, "test", "Succeeded", at),
            ],
        ),
        (
            "rework-run",
            "Succeeded",
            "spa",
            None,
            [
                _job("b", 1, "build", "Succeeded", at),
                _job("t", 1, "test", "Failed", at, "test_failure"),
                _job("t", 2, "test", "Succeeded", at),
            ],
        ),
        (
            "broken-run",
            "Failed",
            "api",
            "compile_error",
            [
                _job("b", 1, "build", "Failed", at, "compile_error"),
            ],
        ),
    ]
    with schema_context(tenant.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    position=i,
                    run_id=run_id,
                    project="web",
                    status=status,
                    timestamp=at + timedelta(minutes=5),
                    template_recipe_id=template,
                    requested_at=at,
                    started_at=at,
                    finished_at=at + timedelta(minutes=5),
                    failure_type=failure,
                    jobs=tuple(jobs),
                )
                for i, (run_id, status, template, failure, jobs) in enumerate(specs)
            ]
        )


def test_page_shows_steps_worst_first_with_drill_down(alpha):
    _runs(alpha)
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(client.get("/steps/?days=7"))
    assert "Where pipelines fail and rework most" in page
    rows = page.split('data-testid="step-row"')[1:]
    assert [r.split('data-testid="step-runs">')[1].split("<")[0] for r in rows] == [
        "test",
        "build",
    ]
    assert "50.00%" in rows[0]  # test: rework rate 1 of 2 runs
    assert "test_failure" in rows[0] and "compile_error" in rows[1]
    assert 'id="step-rates"' in page  # the chart
    assert 'data-testid="lead-time"' in page and "p90" in page
    link = html.unescape(rows[0].split('href="')[1].split('"')[0])
    assert link.startswith("/runs/?") and "step=test" in link and "from=" in link
    # The drill-down lists exactly the runs that ran the step.
    runs = response_text(client.get(link))
    assert "rework-run" in runs and "ok-run" in runs and "broken-run" not in runs
    # The chart's bars open the same runs; the shared range control keeps grouping and sort.
    response = client.get("/steps/?range=30d&by=template&sort=runs")
    chart = response.context["chart"]
    assert all(
        h.startswith("/runs/?step=") and "&from=" in h for h in chart["data"][0]["customdata"]
    )
    hrefs = {p.key: p.href for p in response.context["time_range"].presets}
    assert hrefs["7d"] == "?by=template&sort=runs&range=7d"
    assert 'aria-current="page">30 days' in response_text(response)


def test_grouping_sorting_and_range_stay_in_the_url(alpha):
    _runs(alpha)
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = response_text(client.get("/steps/?by=template&sort=first_pass_rate&days=90"))
    assert '<th scope="col">Template</th>' in page
    rows = page.split('data-testid="step-row"')[1:]
    assert "api" in rows[0]  # 0% first pass, worst first
    assert "template=api" in html.unescape(rows[0])
    assert "sort=p95_ms" in page and "by=template" in html.unescape(page)
    today = timezone.now().date()
    assert (today - timedelta(days=89)).isoformat() in page


def test_bad_input_is_reported_and_the_default_shown(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    for query in (
        "from=2026-13-01",
        "from=2026-10-10&to=2026-10-01",
        "days=abc",
        "days=5000",
        "from=2000-01-01&to=2026-10-01",
        "sort=nope&by=nope&template=%00",
    ):
        response = client.get(f"/steps/?{query}")
        assert response.status_code == 200, query
    page = response_text(client.get("/steps/?from=2026-10-10&to=2026-10-01"))
    assert "is after the end" in page
    assert 'data-testid="steps-empty"' in page


def test_api_returns_the_same_figures(alpha):
    _runs(alpha)
    _, raw = key_for(alpha, ["read"])
    client = logged_in_client(alpha.host, alpha.admin_email)
    body = client.get("/api/v1/steps?days=7", **bearer(raw)).json()
    assert [s["step"] for s in body["steps"]] == ["test", "build"]
    test = body["steps"][0]
    assert test["rework_rate"] == "0.5000" and test["first_pass_rate"] == "0.5000"
    assert test["failure_types"] == [{"type": "test_failure", "count": 1}]
    assert test["ai_cost"] == "0.00" and test["previous"] is None
    assert set(body["lead_time_ms"]) == {"p50", "p90", "p95"}
    grouped = client.get("/api/v1/steps?by=template&sort=runs", **bearer(raw)).json()
    assert {(s["template"], s["step"]) for s in grouped["steps"]} == {
        ("spa", "build"),
        ("spa", "test"),
        ("api", "build"),
    }
    for query in ("days=0", "start=2026-10-10&end=2026-10-01", "by=x", "sort=x", "start=nope"):
        response = client.get(f"/api/v1/steps?{query}", **bearer(raw))
        assert response.status_code == 400, query
        assert response["Content-Type"] == "application/problem+json"
    schema = client.get("/api/schema/", **bearer(raw)).content.decode()
    assert "/api/v1/steps" in schema


def test_run_history_step_and_failure_filters(alpha):
    _runs(alpha)
    client = logged_in_client(alpha.host, alpha.admin_email)

    def listed(query: str) -> set[str]:
        page = response_text(client.get(f"/runs/?{query}"))
        return {n for n in ("ok-run", "rework-run", "broken-run") if n in page}

    assert listed("step=test") == {"ok-run", "rework-run"}
    assert listed("step=test&failure_type=test_failure") == {"rework-run"}
    assert listed("failure_type=compile_error") == {"broken-run"}
    assert listed("step=deploy") == set()
    assert listed("status=failed") == {"broken-run"}  # any letter case
    assert listed("status=FAILED&step=build") == {"broken-run"}
    assert "is not a run status" in response_text(client.get("/runs/?status=nope"))
    csv = b"".join(client.get("/runs.csv?step=test&failure_type=test_failure").streaming_content)
    assert b"rework-run" in csv and b"ok-run" not in csv

    _, raw = key_for(alpha, ["read"])
    api = client.get("/api/v1/runs?step=test&status=succeeded", **bearer(raw)).json()
    assert {r["run_id"] for r in api["results"]} == {"ok-run", "rework-run"}
    api = client.get("/api/v1/runs?failure_type=test_failure", **bearer(raw)).json()
    assert {r["run_id"] for r in api["results"]} == {"rework-run"}
    bad = client.get("/api/v1/runs?status=nope", **bearer(raw))
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"


def test_a_days_value_of_other_digits_is_not_a_500(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/steps/?days=%C2%B2")
    assert page.status_code == 200
