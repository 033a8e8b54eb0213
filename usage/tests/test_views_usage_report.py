"""The usage report page (usage.views.usage_report): figures and charts, bad ranges explained,
empty states."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal import charts
from tests.support import add_llm_call, logged_in_client, report_runs_make, run_finished
from usage.models import Run
from usage.selectors import reporting

pytestmark = pytest.mark.django_db


def test_usage_page_shows_report_and_charts(alpha, django_assert_max_num_queries):
    day = timezone.now().date() - timedelta(days=3)
    report_runs_make(alpha, day)
    client = logged_in_client(alpha.host, alpha.admin_email)
    with django_assert_max_num_queries(16):  # + the filters' choices
        page = client.get("/usage/").content.decode()
    assert re.search(
        r'data-testid="usage-runs"><a href="/runs/\?from=[-0-9]+&amp;to=[-0-9]+">9<', page
    )
    assert 'data-figure="run-volume-data"' in page and 'id="tokens-data"' not in page
    assert "No LLM calls in this range" in page
    assert re.search(
        r'<td><a href="/runs/\?template=spa&amp;from=[^"]+">spa</a></td><td class="num">6</td>',
        page,
    )


def test_usage_page_explains_bad_ranges_instead_of_failing(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/usage/?from=yesterday&grain=fortnight").content.decode()
    assert "&#x27;yesterday&#x27; is not a date" in page
    page = client.get("/usage/?from=2020-01-01&to=2026-01-01").content.decode()
    assert "at most 366 days" in page
    page = client.get("/usage/?from=2026-02-01&to=2026-01-01").content.decode()
    assert "is after the end" in page


def test_usage_page_of_an_empty_tenant_has_empty_states(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/usage/").content.decode()
    assert "No runs in this range" in page and "No LLM calls in this range" in page
    assert "No usage received yet" in page  # the freshness line of every page


def _runs_with_minutes(tenant, day, minutes, **fields):  # type: ignore[no-untyped-def]
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    with schema_context(tenant.schema):
        for n, m in enumerate(minutes):
            run_finished(
                f"m-{fields.get('template_recipe_id', 'x')}-{n}", "Succeeded", at, m, **fields
            )


def test_median_and_p95_are_exact_percentiles_not_bucket_edges(alpha):
    day = timezone.now().date() - timedelta(days=2)
    _runs_with_minutes(alpha, day, range(1, 21), template_recipe_id="spa")
    with schema_context(alpha.schema):
        report = reporting.usage_report(start=day, end=day, grain="day")
    # percentile_cont over 1..20 minutes: 10.5 and 19.05 minutes.
    assert report.exact and (report.p50_ms, report.p95_ms) == (630_000, 1_143_000)
    assert report.periods[str(day)].percentile_ms(0.5) == 630_000
    assert report.templates[0].p50_ms == 630_000
    page = logged_in_client(alpha.host, alpha.admin_email).get("/usage/?range=7d").content.decode()
    assert "median <strong>10m 30s</strong> · p95 <strong>19m 03s</strong>" in page


def test_long_busy_ranges_interpolate_inside_histogram_buckets(alpha, monkeypatch):
    day = timezone.now().date() - timedelta(days=2)
    _runs_with_minutes(alpha, day, range(1, 21))
    monkeypatch.setattr(reporting, "EXACT_RUNS", 0)
    with schema_context(alpha.schema):
        report = reporting.usage_report(start=day, end=day, grain="day")
    assert not report.exact
    # Within a bucket's width (19%) of the exact figure.
    assert abs(report.p50_ms - 630_000) / 630_000 < 0.19
    assert abs(report.p95_ms - 1_143_000) / 1_143_000 < 0.19


def test_filters_narrow_every_figure_and_survive_a_range_change(alpha):
    day = timezone.now().date() - timedelta(days=3)
    report_runs_make(alpha, day)
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/usage/?range=7d&template=api&grain=day").content.decode()
    assert re.search(r'data-testid="usage-runs"><a href="[^"]*">2<', page)
    assert '<option value="api" selected>api</option>' in page
    # The presets keep the filters; the drill-downs carry them with the range's days.
    assert 'href="?template=api&amp;grain=day&amp;range=30d"' in page
    start = (timezone.now().date() - timedelta(days=6)).isoformat()
    assert f"/runs/?template=api&amp;from={start}" in page
    page = client.get("/usage/?range=7d&run_type=docs").content.decode()
    assert re.search(r'data-testid="usage-runs"><a href="[^"]*">1<', page)
    page = client.get("/usage/?range=7d&project=nope").content.decode()
    assert "No runs in this range" in page


def test_model_filter_counts_runs_that_called_it_and_links_their_run_history(alpha):
    day = timezone.now().date() - timedelta(days=3)
    report_runs_make(alpha, day)
    at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    with schema_context(alpha.schema):
        run = Run.objects.get(run_id="ok-0")
        add_llm_call(project=run.project, run=run, event_id="c1", at=at, cost=Decimal("0.01"))
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/usage/?range=7d&model=claude-sonnet-4-5").content.decode()
    assert re.search(
        r'data-testid="usage-runs"><a href="[^"]*model=claude-sonnet-4-5[^"]*">1<', page
    )
    assert 'data-testid="model-note"' in page
    assert "/runs/?model=claude-sonnet-4-5&amp;from=" in page  # the figures open those runs
    page = client.get("/usage/?range=7d").content.decode()
    assert "model=claude-sonnet-4-5" in page  # the model's row opens this report for it


def test_drill_down_hrefs_on_charts_and_rows(alpha):
    day = timezone.now().date() - timedelta(days=3)
    report_runs_make(alpha, day)
    response = logged_in_client(alpha.host, alpha.admin_email).get("/usage/?range=7d")
    volume = response.context["volume_chart"]
    failed = next(t for t in volume["data"] if t["name"] == "Failed")
    index = failed["x"].index(str(day))
    assert failed["customdata"][index] == f"/runs/?status=Failed&from={day}&to={day}"
    assert volume["layout"]["yaxis"]["tickformat"] == ",d"
    trend = response.context["trend_chart"]
    minutes = trend["layout"]["yaxis2"]
    assert minutes["dtick"] in charts.NICE_MINUTES and minutes["tick0"] == 0
    page = response.content.decode()
    assert 'href="/runs/?run_type=docs&amp;from=' in page
    assert 'href="/runs/?template=spa&amp;from=' in page


def test_presets_custom_and_invalid_ranges(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    for preset in ("today", "7d", "30d", "90d", "this_month", "last_month"):
        response = client.get(f"/usage/?range={preset}")
        assert response.status_code == 200
        assert response.context["report"].start == response.context["time_range"].range.start
    response = client.get("/usage/?range=custom&from=2026-01-05&to=2026-01-09")
    assert (response.context["report"].start, response.context["report"].end) == (
        date(2026, 1, 5),
        date(2026, 1, 9),
    )
    page = client.get("/usage/?range=fortnight").content.decode()
    assert "is not a range" in page
    page = client.get("/usage/?grain=fortnight").content.decode()
    assert "is not day, week or month" in page


def test_usage_page_shows_another_tenants_runs_never(alpha, beta):
    day = timezone.now().date() - timedelta(days=3)
    report_runs_make(beta, day)
    page = logged_in_client(alpha.host, alpha.admin_email).get("/usage/?range=7d").content.decode()
    assert "No runs in this range" in page and "<td>spa" not in page and "template=spa" not in page


def test_finance_cannot_open_usage(people):
    assert people["finance"].get("/usage/?range=7d").status_code == 403


def test_a_model_filter_covers_at_most_a_month(alpha):
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/usage/?range=90d&model=claude-sonnet-4-5")
    assert page.status_code == 200
    assert "at most 31 days" in page.content.decode()
