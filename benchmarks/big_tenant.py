"""A big scratch tenant for the page and API benchmarks: ``runs`` runs over ``days`` days from the
demo generator (about 28 LLM calls a run, so 50,000 runs give about 1.4 million calls), with a
budget and forecasts. It takes no part in the platform's allocation (allocation lines would keep
the scratch tenant from being dropped). Call after ``django.setup()``."""

from __future__ import annotations

import dataclasses
import random
import time
from decimal import Decimal

ADMIN_EMAIL = "admin@bench.test"


def big_tenant(*, slug: str, runs: int, days: int, password: str, reuse: bool):  # type: ignore[no-untyped-def]
    """The tenant ``slug`` (re-created unless ``reuse`` and it exists), its admin's password set
    to ``password``."""
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.pricing.book import pricebook_refresh
    from billing.pricing.selectors import price_schedule
    from billing.services import budget_set, forecasts_refresh
    from factory_portal.accounts.models import User
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
    from web.demo.generate import generate_history
    from web.demo.load import history_load
    from web.demo.profiles import PROFILES
    from web.demo.traces import TokenSampler

    now = timezone.now()
    tenant = tenant_by_slug(slug)
    if tenant is not None and not reuse:
        tenant_delete(tenant=tenant)
        tenant = None
    if tenant is None:
        public_tenant_ensure()
        pricebook_refresh()
        base = PROFILES[0]
        # Mean of the profile's growth ramp times the weekday/weekend mix (weekends at 35%).
        mean_volume = (1 + base.growth) / 2 * (5 + 2 * 0.35) / 7
        profile = dataclasses.replace(
            base,
            slug=slug,
            name=f"Benchmark {slug}",
            runs_per_day=runs / (days * mean_volume),
            active_now=12,
        )
        tenant = tenant_create(
            slug=slug, name=profile.name, admin_email=ADMIN_EMAIL, admin_password=password
        ).tenant
        rng = random.Random(7)
        started = time.perf_counter()
        history = generate_history(
            profile=profile, rng=rng, now=now, days=days, samples=TokenSampler(rng)
        )
        with schema_context(tenant.schema_name):
            history_load(history, price_schedule())
        print(f"load_seconds {time.perf_counter() - started:.1f}")
        started = time.perf_counter()
        with schema_context(tenant.schema_name):
            budget_set(amount=Decimal(50_000))
            forecasts = forecasts_refresh(today=now.date())
        print(f"budget_and_{forecasts}_forecasts_seconds {time.perf_counter() - started:.1f}")
    with schema_context(tenant.schema_name):
        admin = User.objects.get(email=ADMIN_EMAIL)
        admin.set_password(password)
        admin.save(update_fields=["password"])
    return tenant
