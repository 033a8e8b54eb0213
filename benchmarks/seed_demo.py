"""Measures the demo seed: generation and COPY loading of one Acme-sized tenant.

Usage (with the demo's environment, e.g. after bin/demo):
    DEBUG=1 .venv/bin/python benchmarks/seed_demo.py [--days 90]

Creates a scratch tenant ``bench-seed``, times the pure generation and the priced COPY load, prints
one line per figure, and drops the tenant again.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()

    import django

    django.setup()
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.pricing.book import pricebook_refresh
    from billing.pricing.selectors import price_schedule
    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import public_tenant_ensure, tenant_create, tenant_delete
    from web.demo.generate import generate_history
    from web.demo.load import history_load
    from web.demo.profiles import PROFILES
    from web.demo.traces import TokenSampler

    public_tenant_ensure()
    pricebook_refresh()
    profile = dataclasses.replace(PROFILES[0], slug="bench-seed", name="Benchmark")
    if (old := tenant_by_slug(profile.slug)) is not None:
        tenant_delete(tenant=old)

    started = time.perf_counter()
    created = tenant_create(slug=profile.slug, name=profile.name, admin_email="b@bench.test")
    schema_seconds = time.perf_counter() - started

    rng = random.Random(1)
    started = time.perf_counter()
    history = generate_history(
        profile=profile, rng=rng, now=timezone.now(), days=args.days, samples=TokenSampler(rng)
    )
    generate_seconds = time.perf_counter() - started
    rows = (
        len(history.projects)
        + len(history.runs)
        + len(history.jobs)
        + len(history.llm)
        + len(history.infra)
    )

    prices = price_schedule()
    started = time.perf_counter()
    with schema_context(created.tenant.schema_name):
        history_load(history, prices)
    load_seconds = time.perf_counter() - started
    tenant_delete(tenant=created.tenant)

    print(f"tenant_schema_create_seconds {schema_seconds:.2f}")
    print(f"history_rows {rows}")
    print(f"history_llm_events {len(history.llm)}")
    print(f"generate_seconds {generate_seconds:.2f}")
    print(f"generate_rows_per_second {rows / generate_seconds:,.0f}")
    print(f"price_and_copy_seconds {load_seconds:.2f}")
    print(f"price_and_copy_rows_per_second {rows / load_seconds:,.0f}")


if __name__ == "__main__":
    main()
