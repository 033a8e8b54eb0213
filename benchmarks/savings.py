"""The savings page's work for a big tenant: the (run, step) pairs query over 31 days (its plan
and time), the report computed cold and served from the cache, and the page and API through
Django's full stack.

Usage (with the demo's environment; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/savings.py [--runs 54000] [--days 90]

Creates (or with ``--reuse`` keeps) the scratch tenant ``bench-savings`` from the demo generator
(about 28 LLM calls a run: 54,000 runs give about 1.5 million calls), prints one line per
figure, the pairs query's EXPLAIN (ANALYZE, BUFFERS) and drops the tenant unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")

PASSWORD = secrets.token_urlsafe(16)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from billing.selectors.savings import comparison_days, savings_report
    from factory_portal import periods
    from factory_portal.tenants.connection import connection_zone
    from factory_portal.tenants.services import tenant_delete, tenant_domain
    from usage.models import LlmUsageEvent
    from usage.selectors import savings as usage_savings

    slug = "bench-savings"
    tenant = big_tenant(
        slug=slug, runs=args.runs, days=args.days, password=PASSWORD, reuse=args.reuse
    )
    with schema_context(tenant.schema_name):
        print(f"tenant_llm_events {LlmUsageEvent.objects.count()}")
        zone = connection_zone()
        today = periods.local_date(timezone.now(), zone)
        start, end = today - timedelta(days=29), today
        first, last = comparison_days(start, end)
        bounds = (
            periods.local_day_start(first, zone),
            periods.local_day_start(last + timedelta(days=1), zone),
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + usage_savings._PAIRS,
                {"start": bounds[0], "end": bounds[1]},
            )
            plan = [row[0] for row in cursor.fetchall()]
        print("\n".join(plan))
        started = time.perf_counter()
        pairs = usage_savings.step_model_pairs(start=bounds[0], end=bounds[1])
        print(f"pairs_query_31_days_ms {_ms(started):.0f} ({len(pairs)} template/step/models)")
        cache.clear()
        started = time.perf_counter()
        report = savings_report(tenant=tenant, start=start, end=end)
        print(f"report_30_days_cold_ms {_ms(started):.0f}")
        warm = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            savings_report(tenant=tenant, start=start, end=end)
            warm.append(_ms(started))
        print(f"report_30_days_cached_p50_ms {statistics.median(warm):.1f}")
        print(f"recommendations {len(report.recommendations)}")
        for rec in report.recommendations:
            print(f"  {rec.monthly_saving:.2f} {rec.title}")

    host = tenant_domain(slug)
    settings.ALLOWED_HOSTS.append(host)
    client = Client(HTTP_HOST=host)
    client.post("/login/", {"username": "admin@bench.test", "password": PASSWORD})
    for name, path in (("page", "/costs/savings/"), ("api", "/api/v1/savings?range=30d")):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            status = client.get(path).status_code
            times.append(_ms(started))
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"{name}_30_days_p95_ms {p95:.1f} (status {status})")
    if not args.keep:
        tenant_delete(tenant=tenant)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=54_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parsed = parser.parse_args()
    import django

    django.setup()
    main(parsed)
