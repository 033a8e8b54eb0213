"""Management commands: tenant_create, portal_setup, seed_demo."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from factory_portal.accounts.models import Role, User
from factory_portal.periods import month_start
from factory_portal.tenants.models import Domain, Tenant
from tests.support import host_client, logged_in_client
from usage.models import CostSource, LlmUsageEvent, Run
from web.demo.generate import ModelRef, ProjectSpec, TenantProfile
from web.demo.seed import demo_seed

pytestmark = pytest.mark.django_db


def test_tenant_create_makes_schema_domain_and_admin():
    out = io.StringIO()
    call_command(
        "tenant_create",
        "--slug",
        "gamma-co",
        "--name",
        "Gamma Co",
        "--admin-email",
        "Boss@Gamma.test",
        stdout=out,
    )
    tenant = Tenant.objects.get(slug="gamma-co")
    assert tenant.schema_name == "gamma_co"
    assert Domain.objects.get(tenant=tenant).domain == "gamma-co.localhost"
    password = out.getvalue().split("Password (shown once): ")[1].strip()
    with schema_context("gamma_co"):
        admin = User.objects.get()
        assert admin.email == "boss@gamma.test"
        assert admin.role == Role.ADMIN
    assert logged_in_client("gamma-co.localhost", "boss@gamma.test", password)


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("alpha", "already exists"),
        ("Bad_Slug", "lowercase"),
        ("public", "reserved"),
        ("x", "2-40"),
    ],
)
def test_tenant_create_rejects_bad_slugs(slug, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "tenant_create",
            "--slug",
            slug,
            "--name",
            "X",
            "--admin-email",
            "a@x.test",
            stdout=io.StringIO(),
        )


def test_tenant_create_rejects_bad_email_before_creating_anything():
    with pytest.raises(CommandError, match="valid email"):
        call_command(
            "tenant_create",
            "--slug",
            "delta",
            "--name",
            "Delta",
            "--admin-email",
            "not-an-email",
            stdout=io.StringIO(),
        )
    assert not Tenant.objects.filter(slug="delta").exists()


def test_portal_setup_is_idempotent(public_host):
    for _ in range(2):
        call_command(
            "portal_setup",
            "--operator-email",
            "second-op@portal.test",
            "--operator-password",
            "a-long-password-1",
            stdout=io.StringIO(),
        )
    assert Domain.objects.filter(domain=public_host).count() == 1
    with schema_context("public"):
        assert User.objects.filter(email="second-op@portal.test", role=Role.OPERATOR).count() == 1


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
        seed=7, now=now, days=4, password="demo-pass-1234", profiles=(SMALL_PROFILE,)
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
        month_cost = LlmUsageEvent.objects.filter(
            occurred_at__gte=month_start(timezone.now())
        ).aggregate(total=Sum("cost"))["total"] or Decimal(0)
    # The overview shows the tenant's own month-to-date cost, rounded to the cent.
    page = logged_in_client("demo-small.localhost", "admin@demo-small.test", "demo-pass-1234")
    body = page.get("/").content.decode()
    assert f'data-testid="mtd-cost">${month_cost.quantize(Decimal("0.01")):,}<' in body


def test_seed_demo_leaves_existing_tenants_alone_unless_reset():
    now = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
    demo_seed(seed=1, now=now, days=2, password="demo-pass-1234", profiles=(SMALL_PROFILE,))
    [again] = demo_seed(
        seed=1, now=now, days=2, password="demo-pass-1234", profiles=(SMALL_PROFILE,)
    )
    assert again.result is None
    [reset] = demo_seed(
        seed=2, now=now, days=2, password="demo-pass-1234", profiles=(SMALL_PROFILE,), reset=True
    )
    assert reset.result is not None
    assert host_client("demo-small.localhost").get("/login/").status_code == 200
