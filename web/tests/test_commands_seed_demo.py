"""``seed_demo``: priced history the overview shows; existing tenants left alone unless reset."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import RunBudget, RunGuard
from factory_portal.accounts.models import User
from factory_portal.periods import month_start
from runtime.models import MetricMinute, MetricSeries
from tests.support import host_client, logged_in_client
from usage.models import CostSource, ErrorGroup, Job, LlmUsageEvent, Run, RunLog, SpanError
from web.demo.generate import ModelRef, ProjectSpec, TenantProfile
from web.demo.seed import demo_seed

pytestmark = pytest.mark.django_db


SMALL_PROFILE = TenantProfile(
    slug="demo-small",
    name="Demo Small",
    runs_per_day=20,
    growth=1.2,
    projects=(ProjectSpec("svc", "Service", (("microservice", 1.0),)),),
    models={
        "plan": ModelRef("anthropic", "claude-opus-4-1", "anthropic"),
        "main": ModelRef("anthropic", "claude-sonnet-4-5", "anthropic"),
        "light": ModelRef("anthropic", "claude-haiku-4-5", "anthropic"),
        "embed": ModelRef("openai", "text-embedding-3-small", "none"),
    },
    unpriced_model=ModelRef("self-hosted", "in-house-coder", "none"),
)


def test_seed_demo_loads_priced_history_that_the_overview_shows():
    now = timezone.now()
    [seeded] = demo_seed(
        seed=7, now=now, days=4, password="demo-pass-1234", profiles=(SMALL_PROFILE,), metric_days=1
    )
    result = seeded.result
    assert result is not None and result.runs > 30 and result.llm_events > 500
    with schema_context(seeded.tenant.schema_name):
        stored = LlmUsageEvent.objects.aggregate(total=Sum("cost"))["total"]
        assert stored == result.cost
        assert (
            LlmUsageEvent.objects.filter(cost_source=CostSource.UNPRICED, cost__isnull=True).count()
            == result.unpriced_events
        )
        assert set(User.objects.values_list("role", flat=True)) == {"admin", "finance", "member"}
        assert (
            Run.objects.filter(status="Running").exists()
            or Run.objects.filter(status="Requested").exists()
        )
        # A run budget on one template, with a running run over it (the active runs page's flag).
        assert RunBudget.objects.count() == 1
        assert RunGuard.objects.filter(state="stop", finished=False).exists()
        # The runtime half: an exception for failed job attempts, grouped; logs; metric series.
        failed_attempts = Job.objects.filter(status="Failed").exclude(
            failure_type__in=("", "cancelled_by_user")
        )
        assert SpanError.objects.count() == failed_attempts.count() > 0
        assert ErrorGroup.objects.count() < SpanError.objects.count()
        assert RunLog.objects.filter(level="ERROR").count() == SpanError.objects.count()
        assert {"queue_depth", "worker_errors_total", "job_duration_seconds"} <= set(
            MetricSeries.objects.values_list("name", flat=True)
        )
        assert MetricMinute.objects.filter(series__name="queue_depth").exists()
        month_cost = LlmUsageEvent.objects.filter(
            occurred_at__gte=month_start(timezone.now())
        ).aggregate(total=Sum("cost"))["total"] or Decimal(0)
    # The overview shows the tenant's own month-to-date cost, rounded to the cent.
    page = logged_in_client("demo-small.localhost", "admin@demo-small.test", "demo-pass-1234")
    body = page.get("/").content.decode()
    assert f'data-testid="mtd-cost">${month_cost.quantize(Decimal("0.01")):,}<' in body
    # Quotes before a run: the demo's templates, each with its quote from the finished runs.
    with schema_context(seeded.tenant.schema_name):
        templates = set(
            Run.objects.filter(status__in=("Succeeded", "Failed", "Cancelled")).values_list(
                "template_recipe_id", flat=True
            )
        )
    quotes = page.get("/costs/quotes/").content.decode()
    assert templates and quotes.count('data-testid="quote-template"') == len(templates)
    assert all(f"<h2>{name}</h2>" in quotes for name in templates)


def test_seed_demo_leaves_existing_tenants_alone_unless_reset():
    now = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
    demo_seed(
        seed=1, now=now, days=2, password="demo-pass-1234", profiles=(SMALL_PROFILE,), metric_days=0
    )
    [again] = demo_seed(
        seed=1, now=now, days=2, password="demo-pass-1234", profiles=(SMALL_PROFILE,), metric_days=0
    )
    assert again.result is None
    [reset] = demo_seed(
        seed=2,
        now=now,
        days=2,
        password="demo-pass-1234",
        profiles=(SMALL_PROFILE,),
        reset=True,
        metric_days=0,
    )
    assert reset.result is not None
    assert host_client("demo-small.localhost").get("/login/").status_code == 200


def test_seed_demo_leaves_planner_statistics_on_the_tables_it_loaded():
    """Rows COPYed in have no statistics until autovacuum analyses them (it cannot see this
    test's open transaction at all): the seed analyses them itself, or a fresh demo's pages plan
    their queries as if the tables were empty."""
    [seeded] = demo_seed(
        seed=7,
        now=timezone.now(),
        days=3,
        password="demo-pass-1234",
        profiles=(SMALL_PROFILE,),
        billing=False,
        metric_days=1,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = %s",
            [seeded.tenant.schema_name],
        )
        analysed = {name for (name,) in cursor.fetchall()}
    assert {"usage_run", "usage_job", "usage_llmusagedaily", "runtime_metricpoint"} <= analysed
    # A partitioned event table is analysed with its partitions.
    assert "usage_llmusageevent" in analysed
    assert any(name.startswith("usage_llmusageevent_p") for name in analysed)
