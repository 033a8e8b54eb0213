"""Two tenants' data never mix: not in the ORM, not on pages, not through the API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from runtime.models import MetricPoint
from runtime.tests.otlp_metrics import sdk_request
from tests.support import (
    add_llm_call,
    bearer,
    host_client,
    key_for,
    logged_in_client,
    runs_make,
)
from usage.models import LlmUsageEvent, Project, Run, RunStatus
from usage.tests.otlp_spans import as_request, factory_run_spans

pytestmark = pytest.mark.django_db


def _populate(schema: str, slug: str, cost: Decimal, active: int) -> None:
    now = timezone.now()
    with schema_context(schema):
        project = Project.objects.create(slug=f"{slug}-secret", name=f"{slug} secret project")
        for n in range(active):
            run = Run.objects.create(
                run_id=f"{slug}-run-{n}",
                project=project,
                status=RunStatus.RUNNING,
                requested_at=now - timedelta(minutes=5),
                started_at=now - timedelta(minutes=4),
                updated_at=now,
            )
            add_llm_call(
                project=project,
                run=run,
                event_id=f"{slug}-ev-{n}",
                at=now - timedelta(minutes=3),
                cost=cost,
            )


def test_same_ids_coexist_per_tenant(alpha, beta):
    now = timezone.now()
    for tenant in (alpha, beta):
        with schema_context(tenant.schema):
            project = Project.objects.create(slug="shared-slug", name="Same slug")
            Run.objects.create(
                run_id="run-1",
                project=project,
                status=RunStatus.REQUESTED,
                requested_at=now,
                updated_at=now,
            )
            add_llm_call(project=project, run=None, event_id="event-1", at=now, cost=Decimal("1.5"))
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.count() == 1
    with schema_context(beta.schema):
        assert LlmUsageEvent.objects.count() == 1


def test_orm_sees_only_the_current_tenant(alpha, beta):
    _populate(alpha.schema, "alpha", Decimal("7.25"), active=2)
    _populate(beta.schema, "beta", Decimal("100"), active=3)
    with schema_context(alpha.schema):
        assert set(Project.objects.values_list("slug", flat=True)) == {"alpha-secret"}
        assert Run.objects.count() == 2
    with schema_context(beta.schema):
        assert set(Project.objects.values_list("slug", flat=True)) == {"beta-secret"}
        assert Run.objects.count() == 3


def test_overview_pages_show_only_own_numbers(alpha, beta):
    _populate(alpha.schema, "alpha", Decimal("7.25"), active=2)
    _populate(beta.schema, "beta", Decimal("100"), active=3)
    alpha_page = logged_in_client(alpha.host, alpha.admin_email).get("/").content.decode()
    beta_page = logged_in_client(beta.host, beta.admin_email).get("/").content.decode()
    assert "$14.50" in alpha_page and "alpha-run-0" in alpha_page
    assert "beta-run" not in alpha_page and "$300.00" not in alpha_page
    assert "$300.00" in beta_page and "beta-run-2" in beta_page
    assert "alpha-run" not in beta_page


def test_api_lists_only_own_projects(alpha, beta):
    _populate(alpha.schema, "alpha", Decimal(1), active=1)
    _populate(beta.schema, "beta", Decimal(1), active=1)
    _, alpha_key = key_for(alpha, ["read"])
    _, beta_key = key_for(beta, ["read"])
    alpha_projects = host_client(alpha.host).get("/api/v1/projects", **bearer(alpha_key)).json()
    beta_projects = host_client(beta.host).get("/api/v1/projects", **bearer(beta_key)).json()
    assert [p["slug"] for p in alpha_projects["results"]] == ["alpha-secret"]
    assert [p["slug"] for p in beta_projects["results"]] == ["beta-secret"]


def test_browser_session_reads_api_of_own_tenant_only(alpha, beta):
    _populate(beta.schema, "beta", Decimal(1), active=1)
    client = logged_in_client(alpha.host, alpha.admin_email)
    own = client.get("/api/v1/projects")
    assert own.status_code == 200
    assert own.json()["results"] == []
    assert client.get("/api/v1/projects", HTTP_HOST=beta.host).status_code in (401, 403)


def test_a_trace_of_another_tenant_cannot_be_written_into(alpha, beta):
    """Beta reusing alpha's trace id gets its own run in its own schema (trace routes are per
    tenant, issue 13 item 7); alpha's run and calls are untouched."""
    spans = factory_run_spans(tenant=None, run_id="alpha-run")
    _, alpha_key = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["ingest"])
    body = as_request(spans).SerializeToString()
    host_client(alpha.host).post(
        "/v1/traces", data=body, content_type="application/x-protobuf", **bearer(alpha_key)
    )
    with schema_context(alpha.schema):
        from usage.models import LlmUsageEvent, Run

        before = sorted(LlmUsageEvent.objects.values_list("event_id", "cost", "run__run_id"))
    response = host_client(beta.host).post(
        "/v1/traces", data=body, content_type="application/x-protobuf", **bearer(beta_key)
    )
    assert response.status_code == 200
    with schema_context(alpha.schema):
        assert (
            sorted(LlmUsageEvent.objects.values_list("event_id", "cost", "run__run_id")) == before
        )
        assert Run.objects.count() == 1
    with schema_context(beta.schema):
        assert Run.objects.get().run_id == "alpha-run"  # beta's own run of that name
        assert LlmUsageEvent.objects.count() == len(before)


def test_metrics_are_written_to_the_senders_tenant_only(alpha, beta):
    """A tenant's key writes metrics into its own schema; on another tenant's host it is refused,
    and a point naming another tenant is rejected (runtime/tests/test_api_metrics.py has more)."""
    _, alpha_key = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["ingest"])
    body = sdk_request().SerializeToString()
    sent = host_client(alpha.host).post(
        "/v1/metrics", data=body, content_type="application/x-protobuf", **bearer(alpha_key)
    )
    assert sent.status_code == 200
    refused = host_client(alpha.host).post(
        "/v1/metrics", data=body, content_type="application/x-protobuf", **bearer(beta_key)
    )
    assert refused.status_code in (401, 403)
    named = sdk_request(labels={"tenant_id": "alpha"}).SerializeToString()
    host_client(beta.host).post(
        "/v1/metrics", data=named, content_type="application/x-protobuf", **bearer(beta_key)
    )
    with schema_context(alpha.schema):
        assert MetricPoint.objects.count() == 5
    with schema_context(beta.schema):
        assert not MetricPoint.objects.exists()
    assert not MetricPoint.objects.exists()  # the public schema: platform series only


def test_another_tenants_run_is_not_found(alpha, beta):
    runs_make(beta, 1, prefix="beta-run")
    client = logged_in_client(alpha.host, alpha.admin_email)
    assert client.get("/runs/beta-run-000/").status_code == 404
    assert "beta-run" not in client.get("/runs/").content.decode()
    assert b"beta-run" not in b"".join(client.get("/runs.csv").streaming_content)


def test_steps_page_and_api_show_only_own_steps(alpha, beta):
    from usage.domain.runs import JobUpdate, RunUpdate
    from usage.services.runs import runs_ingest

    at = timezone.now() - timedelta(hours=2)
    with schema_context(alpha.schema):
        runs_ingest(
            updates=[
                RunUpdate(
                    0,
                    "alpha-run",
                    "alpha-project",
                    "Succeeded",
                    at,
                    template_recipe_id="alpha-template",
                    requested_at=at,
                    jobs=(JobUpdate("j", 1, "Succeeded", at, step_name="alpha-secret-step"),),
                )
            ]
        )
    for tenant, expected in ((alpha, True), (beta, False)):
        page = logged_in_client(tenant.host, tenant.admin_email).get("/steps/").content.decode()
        assert ("alpha-secret-step" in page) is expected
        _, raw = key_for(tenant, ["read"])
        body = host_client(tenant.host).get("/api/v1/steps", **bearer(raw)).content.decode()
        assert ("alpha-secret-step" in body) is expected
    # alpha's key on beta's host is refused.
    _, alpha_key = key_for(alpha, ["read"])
    assert host_client(beta.host).get("/api/v1/steps", **bearer(alpha_key)).status_code == 401
