"""Tenant pages: overview with charts, run history (filters, keyset pages, CSV), run details,
active runs; each tenant sees only its own runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.staticfiles import finders
from django_tenants.utils import schema_context

from tests.support import llm_event_in, logged_in_client
from usage.domain.runs import JobUpdate, RunUpdate
from usage.pricing import pricer_for
from usage.services.ingest import events_ingest
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)


def _runs(tenant, count, *, status="Succeeded", project="web", prefix="run"):
    updates = [
        RunUpdate(
            i,
            f"{prefix}-{i:03d}",
            project,
            status,
            T0 + timedelta(minutes=i, seconds=30),
            template_recipe_id="react-spa",
            run_type="frontend",
            requested_at=T0 + timedelta(minutes=i),
            started_at=T0 + timedelta(minutes=i),
            finished_at=T0 + timedelta(minutes=i, seconds=30),
        )
        for i in range(count)
    ]
    with schema_context(tenant.schema):
        runs_ingest(updates=updates)


def test_plotly_is_served_from_the_installed_package():
    assert finders.find("vendor/plotly/plotly.min.js")


def test_overview_of_an_empty_tenant_has_empty_states(alpha):
    page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    assert "No forecast yet" in page and "No budget set" in page
    assert "vendor/plotly/plotly.min.js" in page


def test_run_history_pages_by_keyset_without_overlap(alpha):
    _runs(alpha, 60)
    client = logged_in_client(alpha.host, alpha.admin_email)
    first = client.get("/runs/").content.decode()
    ids_first = re.findall(r"<code>(run-\d{3})</code>", first)
    assert len(ids_first) == 50 and ids_first[0] == "run-059"
    next_link = re.search(r'href="\?([^"]+)" data-testid="next-page"', first).group(1)
    second = client.get("/runs/?" + next_link.replace("&amp;", "&")).content.decode()
    ids_second = re.findall(r"<code>(run-\d{3})</code>", second)
    assert ids_second == [f"run-{i:03d}" for i in range(9, -1, -1)]
    assert 'data-testid="next-page"' not in second


def test_run_history_filters_and_csv(alpha):
    _runs(alpha, 3)
    _runs(alpha, 2, status="Failed", project="api", prefix="=bad")
    client = logged_in_client(alpha.host, alpha.admin_email)
    failed = client.get("/runs/?status=Failed").content.decode()
    assert "=bad-000" in failed and "run-000" not in failed
    assert "run-001" in client.get("/runs/?q=run-001").content.decode()
    assert "No run matches" in client.get("/runs/?project=nope").content.decode()
    csv_text = b"".join(client.get("/runs.csv?status=Failed").streaming_content).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("run_id,project")
    assert len(lines) == 3
    assert lines[1].startswith("'=bad-001")  # formula-safe


def test_run_details_with_jobs_calls_and_cost(alpha):
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    0,
                    "r-1",
                    "web",
                    "Succeeded",
                    T0 + timedelta(minutes=5),
                    started_at=T0,
                    finished_at=T0 + timedelta(minutes=5),
                    trace_id="ab" * 16,
                    jobs=(
                        JobUpdate(
                            "build",
                            1,
                            "Failed",
                            T0 + timedelta(minutes=1),
                            "build",
                            T0,
                            T0 + timedelta(minutes=1),
                            failure_type="llm_timeout",
                        ),
                        JobUpdate(
                            "build",
                            2,
                            "Succeeded",
                            T0 + timedelta(minutes=4),
                            "build",
                            T0 + timedelta(minutes=2),
                            T0 + timedelta(minutes=4),
                        ),
                    ),
                )
            ]
        )
        from decimal import Decimal

        events_ingest(
            events=[
                llm_event_in(
                    "c1",
                    T0 + timedelta(minutes=3),
                    project="web",
                    run_id="r-1",
                    cost=Decimal("0.42"),
                )
            ],
            pricer=pricer_for(alpha.tenant),
        )
    page = logged_in_client(alpha.host, alpha.admin_email).get("/runs/r-1/").content.decode()
    assert "$0.42" in page and "llm_timeout" in page and "ab" * 16 in page
    assert "build #2" in page  # the timeline shows both attempts


def test_another_tenants_run_is_not_found(alpha, beta):
    _runs(beta, 1, prefix="beta-run")
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert client.get("/runs/beta-run-000/").status_code == 404
    assert "beta-run" not in client.get("/runs/").content.decode()
    assert b"beta-run" not in b"".join(client.get("/runs.csv").streaming_content)


def test_active_runs_page_and_fragment(alpha):
    _runs(alpha, 2, status="Running")
    client = logged_in_client(alpha.host, alpha.admin_email)
    page = client.get("/runs/active/").content.decode()
    assert "0 queued · 2 running" in page and 'data-refresh-url="?fragment=1"' in page
    fragment = client.get("/runs/active/?fragment=1").content.decode()
    assert "<html" not in fragment and "run-001" in fragment


def test_pages_need_a_login(alpha):
    from tests.support import host_client

    for path in ("/runs/", "/runs/active/", "/runs.csv", "/runs/x/"):
        assert host_client(alpha.host).get(path).status_code == 302


def test_costs_page_is_for_finance_and_admin(alpha):
    from factory_portal.accounts.models import Role
    from factory_portal.accounts.services import user_create
    from tests.support import PASSWORD

    _runs(alpha, 3)
    with schema_context(alpha.schema):
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
