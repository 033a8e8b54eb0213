"""The runtime pages and API (Status, Factory health, Queues & workers, GET /api/v1/status):
what each shows from rows written straight into the runtime tables and runs ingested through
usage, empty states, roles, and isolation — a tenant sees only its schema's series, never
another tenant's or the platform's; the operator pages show the platform's series and exist only
on the operator host."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from runtime.models import MetricKind
from runtime.tests.rows import Hist, heartbeat_make, points_write, series_make
from tests.support import (
    FINANCE,
    bearer,
    host_client,
    key_for,
    logged_in_client,
    run_finished,
    run_update,
)

pytestmark = pytest.mark.django_db

TENANT_PAGES = ["/status/", "/health/factory/", "/health/queues/"]
OPERATOR_PAGES = ["/health/factory/", "/health/queues/"]


def text(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def factory_metrics(queue: str, pool: str, *, depth: float = 30.0, rate: float = 0.5) -> None:
    """Ten minutes of a queue, a worker pool with errors and job durations, in the current
    schema, up to now."""
    now = timezone.now()
    times = [now - timedelta(seconds=30 * i) for i in range(20)]
    points_write(series_make("queue_depth", queue_name=queue), [(t, depth) for t in times])
    points_write(series_make("queue_processing_rate", queue_name=queue), [(t, rate) for t in times])
    points_write(series_make("dlq_size", queue_name=queue), [(t, 2.0) for t in times])
    points_write(series_make("jobs_in_queue", job_type=f"{queue}-job"), [(t, 7.0) for t in times])
    points_write(series_make("jobs_processing", worker_pool=pool), [(t, 3.0) for t in times])
    points_write(
        series_make("worker_cpu_usage", worker_pool=pool, worker_id="w1"), [(t, 0.4) for t in times]
    )
    points_write(
        series_make("worker_errors_total", MetricKind.SUM, worker_pool=pool, error_type="oom"),
        [(t, 1.0) for t in times],
    )
    points_write(
        series_make("retries_total", MetricKind.SUM, job_type=f"{queue}-job"),
        [(t, 1.0) for t in times],
    )
    points_write(
        series_make("job_duration_seconds", MetricKind.HISTOGRAM, job_type=f"{queue}-job"),
        [(t, Hist([1, 10, 60], [0, 4, 0, 0], sum=20)) for t in times],
    )
    heartbeat_make(f"{queue}-control-plane", now - timedelta(seconds=5))
    heartbeat_make(f"{pool}-worker", now - timedelta(seconds=5))


def test_status_page_shows_queue_health_and_runs(alpha, people) -> None:
    now = timezone.now()
    with schema_context(alpha.schema):
        factory_metrics("alpha-build", "alpha-gpu")
        run_update(
            "waiting-1",
            "Requested",
            now - timedelta(minutes=4),
            requested_at=now - timedelta(minutes=4),
        )
        run_update(
            "running-1",
            "Running",
            now - timedelta(minutes=2),
            requested_at=now - timedelta(minutes=3),
            started_at=now - timedelta(minutes=2),
        )
    page = text(people["member"].get("/status/"))
    assert 'data-testid="runs-waiting">1<' in page
    assert 'data-testid="runs-running">1<' in page
    assert "alpha-build" in page
    assert "1m 00s" in page  # 30 waiting at 0.5 jobs/s
    assert 'data-testid="indicator-control_plane"' in page
    assert "alpha-build-control-plane" in page
    # 20 errors against 80 jobs finished in 5 minutes: 25%, degraded (down at 50%).
    data_plane = page.split('data-testid="indicator-data_plane"')[1].split("</tr>")[0]
    assert "health-degraded" in data_plane and "Error rate 25" in data_plane
    database = page.split('data-testid="indicator-database"')[1].split("</tr>")[0]
    assert "health-unknown" in database and "never" in database


def test_pages_empty_states(alpha, people) -> None:
    status = text(people["admin"].get("/status/"))
    assert 'data-testid="no-heartbeats"' in status
    assert "No runs or jobs waiting or running." in status
    assert 'data-testid="overall">unknown<' in status
    for path in ("/health/factory/", "/health/queues/"):
        page = text(people["admin"].get(path))
        assert 'class="chart"' not in page  # no empty axes
        assert "reported in this range." in page


def test_factory_health_and_queues_draw_charts_and_ranges(alpha, people) -> None:
    now = timezone.now()
    with schema_context(alpha.schema):
        factory_metrics("alpha-build", "alpha-gpu")
        for i, status in enumerate(["Succeeded", "Succeeded", "Failed"]):
            run_finished(
                f"done-{i}",
                status,
                now - timedelta(minutes=40),
                10 + i,
                failure_type="deploy_error" if status == "Failed" else "",
            )
    for preset in ("1h", "24h", "7d", "30d"):
        page = text(people["member"].get(f"/health/factory/?range={preset}"))
        assert 'id="run-rates"' in page and 'id="jobs-in-queue"' in page
        assert 'data-testid="runs-finished">3<' in page
        assert "deploy_error" in page
        queues = text(people["member"].get(f"/health/queues/?range={preset}"))
        for chart in ("queue-depth", "worker-cpu", "worker-errors", "retries", "dlq"):
            assert f'id="{chart}"' in queues, (preset, chart)
    bad = text(people["member"].get("/health/factory/?range=2y"))
    assert "Unknown range" in bad and 'aria-current="page">24 hours' in bad


def test_health_pages_take_the_shared_range_of_days_and_drill_down(alpha, people) -> None:
    now = timezone.now()
    with schema_context(alpha.schema):
        factory_metrics("alpha-build", "alpha-gpu")
        run_finished(
            "done-f", "Failed", now - timedelta(minutes=40), 10, failure_type="deploy_error"
        )
        run_finished("done-s", "Succeeded", now - timedelta(minutes=40), 10)
    client = people["member"]
    for query, step in (("range=7d", "2 hours"), ("range=90d", "day"), ("range=30d", "6 hours")):
        response = client.get(f"/health/factory/?{query}")
        page = text(response)
        assert f"per {step};" in page and 'data-testid="runs-finished">2<' in page
        assert len(response.context["window"].buckets) <= 150
        failures = response.context["failure_types_chart"]["data"][0]
        assert any(
            "status=Failed&failure_type=deploy_error&from=" in h for h in failures["customdata"]
        )
        queues = text(client.get(f"/health/queues/?{query}"))
        assert 'id="queue-depth"' in queues
    today = timezone.now().date()
    custom = f"range=custom&from={today - timedelta(days=3)}&to={today + timedelta(days=1)}"
    response = client.get(f"/health/factory/?{custom}")
    assert response.status_code == 200 and response.context["window"].end <= now + timedelta(
        hours=1
    )
    for bad, message in (
        ("range=custom&from=2026-13-01", "is not a date"),
        ("from=2026-10-10&to=2026-10-01", "is after the end"),
    ):
        assert message in text(client.get(f"/health/factory/?{bad}")), bad
    # The 1h and 24h presets stay, beside the shared ones, and keep working as before.
    page = text(client.get("/health/factory/?range=1h"))
    assert 'aria-current="page">1 hour' in page and 'data-range="this_month"' in page


def test_api_status(alpha) -> None:
    with schema_context(alpha.schema):
        factory_metrics("alpha-build", "alpha-gpu")
    _, raw = key_for(alpha, ["read"])
    response = host_client(alpha.host).get("/api/v1/status", **bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert [i["key"] for i in body["indicators"]] == [
        "control_plane",
        "data_plane",
        "queues",
        "database",
    ]
    assert body["queues"][0]["queue_name"] == "alpha-build"
    assert body["queues"][0]["estimated_wait_s"] == pytest.approx(60)
    assert body["runs"]["waiting"] == 0
    _, ingest_only = key_for(alpha, ["ingest"])
    refused = host_client(alpha.host).get("/api/v1/status", **bearer(ingest_only))
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("application/problem+json")
    assert host_client(alpha.host).get("/api/v1/status").status_code in (401, 403)
    schema = host_client(alpha.host).get("/api/schema/", **bearer(raw))
    assert "/api/v1/status" in schema.content.decode()


def test_isolation_tenant_never_sees_other_tenants_or_platform(
    alpha, beta, people, operator
) -> None:
    with schema_context(beta.schema):
        factory_metrics("beta-secret", "beta-pool")
    with schema_context("public"):
        factory_metrics("platform-queue", "platform-pool")
    with schema_context(alpha.schema):
        factory_metrics("alpha-build", "alpha-gpu")
    for path in TENANT_PAGES:
        page = text(people["admin"].get(path))
        assert "alpha-build" in page or "alpha-gpu" in page
        assert "beta-" not in page and "platform-" not in page, path
    _, raw = key_for(alpha, ["read"])
    api = host_client(alpha.host).get("/api/v1/status", **bearer(raw)).content.decode()
    assert "beta-" not in api and "platform-" not in api
    for path in OPERATOR_PAGES:
        page = text(operator.get(path))
        assert "platform-queue" in page or "platform-pool" in page, path
        assert "alpha-" not in page and "beta-" not in page, path
    # A key of beta is not a key on alpha's host.
    _, beta_key = key_for(beta, ["read"])
    assert host_client(alpha.host).get("/api/v1/status", **bearer(beta_key)).status_code == 401


def test_roles(alpha, people, operator, public_host) -> None:
    for path in TENANT_PAGES:
        assert people["member"].get(path).status_code == 200
        assert people["admin"].get(path).status_code == 200
        assert people["finance"].get(path).status_code == 403
        assert host_client(alpha.host).get(path).status_code == 302  # to the login page
    finance_nav = text(people["finance"].get("/"))
    assert 'href="/status/"' not in finance_nav
    member_nav = text(people["member"].get("/"))
    for href in TENANT_PAGES:
        assert f'href="{href}"' in member_nav
    # The operator's pages are on the operator host only; tenant users cannot open them there.
    for path in OPERATOR_PAGES:
        assert operator.get(path).status_code == 200
        assert host_client(public_host).get(path).status_code == 302
    assert operator.get("/status/").status_code == 404
    operator_nav = text(operator.get("/health/"))
    assert 'href="/health/factory/"' in operator_nav and 'href="/health/queues/"' in operator_nav
    assert logged_in_client(alpha.host, FINANCE).get("/api/v1/status").status_code == 403


def test_operator_factory_health_reads_platform_run_counters(operator) -> None:
    now = timezone.now()
    times = [now - timedelta(minutes=i) for i in range(10)]
    with schema_context("public"):
        points_write(series_make("run_success_total", MetricKind.SUM), [(t, 3.0) for t in times])
        points_write(
            series_make("run_failure_total", MetricKind.SUM, failure_type="timeout"),
            [(t, 1.0) for t in times],
        )
        points_write(
            series_make("run_duration_seconds", MetricKind.HISTOGRAM, status="Succeeded"),
            [(t, Hist([60, 600], [0, 4, 0], sum=1200)) for t in times],
        )
    page = text(operator.get("/health/factory/?range=1h"))
    assert 'data-testid="runs-finished">40<' in page
    assert 'data-testid="success-rate">75.0%<' in page
    assert "timeout" in page
    assert 'id="run-duration"' in page and 'id="failure-types"' in page


@pytest.mark.parametrize("path", [*TENANT_PAGES, "/health/factory/?range=1h"])
def test_page_queries_do_not_grow_with_series(alpha, people, path) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = people["admin"]
    with schema_context(alpha.schema):
        factory_metrics("q0", "p0")
    client.get(path)
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    with schema_context(alpha.schema):
        for i in range(1, 6):
            factory_metrics(f"q{i}", f"p{i}")
    with CaptureQueriesContext(connection) as many:
        assert client.get(path).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
