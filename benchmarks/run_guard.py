"""Run guard answers on the page benchmark's big tenant: ``GET /api/v1/runs/{run_id}/guard``
for its active runs under a run budget (a multiple of the P90 quote: the quote is read too),
cold (first answer per template, quote and step expectations computed) and warm, and one pass
of the guard over every active run (what the debounced task does after ingest).

Usage (with the demo's environment; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/run_guard.py [--runs 50000] [--reuse]

Prints p50/p95 server time (Django's full stack without the socket) and drops the tenant unless
``--keep``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")

PASSWORD = secrets.token_urlsafe(16)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from billing.models import RunBudget
    from billing.services import run_budget_set, run_guards_refresh
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.services import tenant_delete, tenant_domain
    from usage.models import Run

    slug = "bench-pages"
    tenant = big_tenant(
        slug=slug, runs=args.runs, days=args.days, password=PASSWORD, reuse=args.reuse
    )
    with schema_context(tenant.schema_name):
        active = list(
            Run.objects.filter(status__in=["Requested", "Running"])
            .exclude(template_recipe_id="")
            .values_list("run_id", "template_recipe_id")
        )
        RunBudget.objects.all().delete()
        run_budget_set(basis="p90_multiple", multiple=Decimal("1.5"))
        _, raw = api_key_create(name="bench", scopes=["read"])
        print(f"tenant_runs {Run.objects.count()}")
        print(f"active_runs {len(active)}")
    host = tenant_domain(slug)
    settings.ALLOWED_HOSTS.append(host)
    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {raw}")

    cache.clear()
    cold = []
    for run_id, _ in active:
        started = time.perf_counter()
        answer = client.get(f"/api/v1/runs/{run_id}/guard")
        cold.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            sys.exit(f"guard of {run_id}: {answer.status_code} {answer.content!r}")
    print(f"guard_cold_first_ms p50 {_percentile(cold, 0.5):.1f} max {max(cold):.1f}")
    warm = []
    for _ in range(args.repeat):
        for run_id, _ in active:
            started = time.perf_counter()
            client.get(f"/api/v1/runs/{run_id}/guard")
            warm.append((time.perf_counter() - started) * 1000)
    print(
        f"guard_warm_ms p50 {_percentile(warm, 0.5):.1f} p95 {_percentile(warm, 0.95):.1f}"
        f" ({len(warm)} answers)"
    )
    with schema_context(tenant.schema_name):
        started = time.perf_counter()
        stored = run_guards_refresh()
        print(f"guard_pass_ms {(time.perf_counter() - started) * 1000:.1f} ({stored} runs)")
    if not args.keep:
        tenant_delete(tenant=tenant)


if __name__ == "__main__":
    main()
