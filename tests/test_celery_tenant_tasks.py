"""Tasks run in the schema of the tenant that enqueued them, with a real worker and real Redis
(eager mode would hide a worker that runs everything in the public schema)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from factory_portal.celery import app
from factory_portal.tenants.models import Tenant
from tests.support import add_llm_call, real_worker
from usage.models import LlmUsageEvent, Project
from usage.tasks import (
    partitions_maintain_all,
    partitions_maintain_tenant,
    tenant_freshness_refresh,
    tenants_freshness_refresh,
)

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    app.conf.task_ignore_result = False
    with (
        django_db_blocker.unblock(),
        real_worker() as running,
    ):
        yield running


@pytest.fixture(scope="module")
def committed_usage(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Usage committed in alpha's schema (the worker has its own connection, outside the test's
    transaction). Removed afterwards."""
    at = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
    with django_db_blocker.unblock(), schema_context("alpha"):
        project = Project.objects.create(slug="worker-check", name="Worker check")
        add_llm_call(project=project, run=None, event_id="worker-check-1", at=at, cost=None)
    yield at
    with django_db_blocker.unblock(), schema_context("alpha"):
        LlmUsageEvent.objects.filter(event_id="worker-check-1").delete()
        Project.objects.filter(slug="worker-check").delete()
        Tenant.objects.filter(slug="alpha").update(usage_complete_until=None)


def test_task_runs_in_the_enqueuing_tenants_schema(worker, alpha, beta):
    with schema_context(alpha.schema):
        alpha_result = tenant_freshness_refresh.apply_async(ignore_result=False)
    with schema_context(beta.schema):
        beta_result = tenant_freshness_refresh.apply_async(ignore_result=False)
    assert alpha_result.get(timeout=20) == alpha.schema
    assert beta_result.get(timeout=20) == beta.schema
    assert connection.schema_name == "public"


def test_beat_fan_out_refreshes_each_tenant(worker, committed_usage, alpha):
    assert tenants_freshness_refresh.apply_async(ignore_result=False).get(timeout=20) >= 2
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tenant = Tenant.objects.get(slug="alpha")
        if tenant.usage_complete_until == committed_usage:
            break
        time.sleep(0.2)
    assert Tenant.objects.get(slug="alpha").usage_complete_until == committed_usage
    assert Tenant.objects.get(slug="beta").usage_complete_until is None


def test_partition_maintenance_runs_in_each_tenants_schema(worker, alpha):
    # In the public schema it would fail: the operator's schema has no event tables.
    with schema_context(alpha.schema):
        result = partitions_maintain_tenant.apply_async(ignore_result=False)
    assert result.get(timeout=30) == []  # nothing past alpha's 13 months
    assert partitions_maintain_all.apply_async(ignore_result=False).get(timeout=20) >= 2
    assert "partitions-maintain" in app.conf.beat_schedule


def test_beat_schedule_names_a_registered_task():
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
