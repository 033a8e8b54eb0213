"""The beat's fan-out stays bounded: chunks of tenants spread over the interval, idle tenants
skipped where the task allows it, every fan-out listed in settings a real task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from factory_portal.celery import app
from factory_portal.tenants import activity, fanout
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.tasks import fan_out_chunk
from usage.services.activity import tenant_activity_record
from usage.tasks import tenant_freshness_refresh

pytestmark = pytest.mark.django_db


def test_the_plan_cuts_chunks_and_spreads_them():
    schemas = [f"t{i}" for i in range(450)]
    plan = fanout.fan_out_plan(schemas, chunk=200, spread_s=30)
    assert [(countdown, len(chunk)) for countdown, chunk in plan] == [
        (0, 200),
        (10, 200),
        (20, 50),
    ]
    assert [s for _, chunk in plan for s in chunk] == schemas
    assert fanout.fan_out_plan([], chunk=200, spread_s=30) == []
    with pytest.raises(ValueError, match="at least one"):
        fanout.fan_out_plan(schemas, chunk=0, spread_s=30)


def test_every_listed_fan_out_is_a_registered_task_on_the_beat():
    app.loader.import_default_modules()
    assert len(settings._FAN_OUT_TASKS) >= 10
    names = [f["name"] for f in settings._FAN_OUT_TASKS]
    assert len(set(names)) == len(names)
    for entry in settings._FAN_OUT_TASKS:
        assert entry["task"] in app.tasks, entry["task"]
        assert entry["tenants"] in ("active", "all"), entry
        assert settings.CELERY_BEAT_SCHEDULE[entry["name"]] == {
            "task": entry["task"],
            "schedule": entry["every"],
        }
    assert fan_out_chunk.name in app.tasks
    # Month close, retention and alert rules never skip a tenant.
    scopes = {f["task"]: f["tenants"] for f in settings._FAN_OUT_TASKS}
    assert scopes["runtime.tasks.metrics_retention_all"] == "all"
    assert scopes["alerts.tasks.alerts_evaluate_all"] == "all"
    assert scopes["usage.tasks.tenants_freshness_refresh"] == "active"
    assert fanout.fan_out_settings("billing.tasks.run_allocations_refresh_all") == ("all", 0.0)


@pytest.fixture
def published(monkeypatch):
    """What the fan-out publishes, in the order it does: ``(task, schema, options)``."""
    calls: list[tuple[str, str, dict[str, object]]] = []

    def recorder(name):
        def apply_async(args=None, **options):
            calls.append((name, connection.schema_name, {"args": args, **options}))

        return apply_async

    monkeypatch.setattr(fan_out_chunk, "apply_async", recorder(fan_out_chunk.name))
    monkeypatch.setattr(
        tenant_freshness_refresh, "apply_async", recorder(tenant_freshness_refresh.name)
    )
    return calls


def test_few_tenants_are_published_at_once_in_their_schemas(published, alpha, beta):
    assert fanout.tenants_fan_out(tenant_freshness_refresh) == 2
    assert [(task, schema) for task, schema, _ in published] == [
        (tenant_freshness_refresh.name, "alpha"),
        (tenant_freshness_refresh.name, "beta"),
    ]


@override_settings(TENANT_FAN_OUT_CHUNK=1)
def test_many_tenants_go_out_in_chunks_spread_over_the_interval(published, alpha, beta):
    assert fanout.tenants_fan_out(tenant_freshness_refresh, args=("x",), spread_s=60) == 2
    assert [(task, schema) for task, schema, _ in published] == [
        (fan_out_chunk.name, "public"),
        (fan_out_chunk.name, "public"),
    ]
    options = [o for _, _, o in published]
    assert [o["countdown"] for o in options] == [0, 30]
    assert [o["args"] for o in options] == [
        (tenant_freshness_refresh.name, ["x"], ["alpha"]),
        (tenant_freshness_refresh.name, ["x"], ["beta"]),
    ]
    assert all(o["expires"] > o["countdown"] for o in options)
    published.clear()
    fan_out_chunk.run(*options[1]["args"])  # the chunk task, as the worker runs it
    assert published == [(tenant_freshness_refresh.name, "beta", {"args": ["x"]})]


@pytest.fixture
def beta_idle(alpha, beta):
    """Activity marks kept for 30 days; alpha sent data now; beta is old and silent."""
    activity.activity_forget_local()
    now = timezone.now()
    Tenant.objects.filter(slug="beta").update(
        created_at=now - timedelta(days=30), usage_complete_until=now - timedelta(days=8)
    )
    Tenant.objects.filter(slug="alpha").update(created_at=now - timedelta(days=30))
    from django.core.cache import cache

    cache.set(activity.SINCE_KEY, (now - timedelta(days=30)).timestamp(), timeout=None)
    assert activity.activity_touch("alpha") is True
    yield
    activity.activity_forget_local()


def test_active_only_fan_outs_skip_idle_tenants(published, beta_idle):
    assert fanout.tenants_fan_out(tenant_freshness_refresh, tenants="active") == 1
    assert [schema for _, schema, _ in published] == ["alpha"]
    published.clear()
    assert fanout.tenants_fan_out(tenant_freshness_refresh, tenants="all") == 2
    assert [schema for _, schema, _ in published] == ["alpha", "beta"]


def test_recent_usage_or_creation_counts_as_activity(beta_idle):
    now = timezone.now()
    assert fanout.fan_out_schemas("active") == ["alpha"]
    Tenant.objects.filter(slug="beta").update(usage_complete_until=now - timedelta(days=6))
    assert fanout.fan_out_schemas("active") == ["alpha", "beta"]
    Tenant.objects.filter(slug="beta").update(
        usage_complete_until=None, created_at=now - timedelta(days=1)
    )
    assert fanout.fan_out_schemas("active") == ["alpha", "beta"]


def test_without_marks_old_enough_every_tenant_is_active(alpha, beta, beta_idle):
    from django.core.cache import cache

    cache.delete(activity.SINCE_KEY)  # a flushed cache cannot tell idle from unknown
    assert fanout.fan_out_schemas("active") == ["alpha", "beta"]
    cache.set(activity.SINCE_KEY, timezone.now().timestamp(), timeout=None)  # marks from today
    assert fanout.fan_out_schemas("active") == ["alpha", "beta"]


def test_ingest_marks_its_tenant_after_commit_and_at_most_every_few_minutes(
    alpha, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    activity.activity_forget_local()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tenant_activity_record(alpha.tenant)
    assert cache.get(activity.KEY_PREFIX + "alpha") is None  # not before the commit
    with django_capture_on_commit_callbacks(execute=True):
        tenant_activity_record(alpha.tenant)
    assert len(callbacks) == 1
    first = cache.get(activity.KEY_PREFIX + "alpha")
    assert first is not None
    assert activity.activity_touch("alpha") is False  # within TOUCH_EVERY_S: no cache write
    activity.activity_forget_local()
