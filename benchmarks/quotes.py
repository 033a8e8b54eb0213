"""Quotes before a run on the page benchmark's big tenant: how long a quote takes (cold: the
template's history read and summarised; warm: served from the cache after the fingerprint
check), ``POST /api/v1/quotes`` end to end, and the backtest command.

Usage (with the demo's environment; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/quotes.py [--runs 52000] [--days 90]
        [--requests 300] [--reuse] [--keep]

Prints one line per figure: ``quote_cold_ms`` (max over templates), ``quote_p50_ms`` and
``quote_p95_ms`` (warm, random project/template/run type), ``api_quote_p95_ms`` (the endpoint
with a read key, budget headroom included), ``backtest_s`` (30 days), and the query plan of the
history read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import secrets
import statistics
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")

PASSWORD = secrets.token_urlsafe(16)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=52_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--slug", default="bench-pages")  # the page benchmark's tenant
    parser.add_argument("--keep", action="store_true", help="keep the tenant afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure an existing bench tenant")
    args = parser.parse_args()

    import django

    django.setup()
    logging.getLogger("portal.access").setLevel(logging.WARNING)  # one line per figure
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from billing.selectors.quotes import history_window, quote_compute
    from factory_portal.accounts.services import api_key_create
    from factory_portal.periods import local_bounds, local_date, zone
    from factory_portal.tenants.services import tenant_delete
    from usage.models import Run
    from usage.selectors.run_history import _FINISHED_SQL

    tenant = big_tenant(
        slug=args.slug, runs=args.runs, days=args.days, password=PASSWORD, reuse=args.reuse
    )
    rng = random.Random(19)  # which quotes to ask, reproducibly
    try:
        with schema_context(tenant.schema_name):
            kinds = list(
                Run.objects.values_list("project__slug", "template_recipe_id", "run_type")
                .distinct()
                .order_by("project__slug", "template_recipe_id", "run_type")
            )
            print(f"runs {Run.objects.count()} kinds {len(kinds)}")
            cache.clear()
            cold = []
            for template in sorted({k[1] for k in kinds}):
                started = time.perf_counter()
                quote_compute(project=kinds[0][0], template=template, run_type="")
                cold.append((time.perf_counter() - started) * 1000)
            print(f"quote_cold_ms {max(cold):.1f} (max of {len(cold)} templates)")
            warm = []
            for _ in range(args.requests):
                project, template, run_type = rng.choice(kinds)
                started = time.perf_counter()
                quote_compute(project=project, template=template, run_type=run_type)
                warm.append((time.perf_counter() - started) * 1000)
            print(f"quote_p50_ms {statistics.median(warm):.1f}")
            print(f"quote_p95_ms {p95(warm):.1f}")
            _, raw = api_key_create(name="bench-quotes", scopes=["read"])
            tz = zone(tenant.timezone)
            start, end = history_window(local_date(timezone.now(), tz))
            lo, hi = local_bounds(start, end + timedelta(days=1), tz)
            with connection.cursor() as cursor:
                cursor.execute(
                    "EXPLAIN ANALYZE "
                    + _FINISHED_SQL.format(template="AND r.template_recipe_id = %(template)s"),
                    {
                        "zone": tenant.timezone,
                        "lo": lo,
                        "hi": hi,
                        "statuses": ["Succeeded", "Failed", "Cancelled"],
                        "template": kinds[0][1],
                        "cap": 5000,
                    },
                )
                plan = [row[0] for row in cursor.fetchall()]
            print("history_plan " + " | ".join(line.strip() for line in plan[:6]))
            print("history_plan_time " + plan[-1].strip())
        host = f"{tenant.slug}.{settings.PORTAL_BASE_DOMAIN}"
        client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {raw}")
        api = []
        for _ in range(args.requests):
            project, template, run_type = rng.choice(kinds)
            body = json.dumps({"project": project, "template": template, "run_type": run_type})
            started = time.perf_counter()
            response = client.post("/api/v1/quotes", data=body, content_type="application/json")
            api.append((time.perf_counter() - started) * 1000)
            if response.status_code not in (200, 422):
                raise SystemExit(f"quote answered {response.status_code}: {response.content!r}")
        print(f"api_quote_p95_ms {p95(api):.1f}")
        started = time.perf_counter()
        out = StringIO()
        call_command("quotes_backtest", "--tenant", tenant.slug, stdout=out)
        print(f"backtest_s {time.perf_counter() - started:.1f}")
        print(out.getvalue().rstrip())
    finally:
        if not args.keep:
            tenant_delete(tenant=tenant)


if __name__ == "__main__":
    main()
