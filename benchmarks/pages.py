"""Server time of every tenant page for a big tenant, and the naive aggregation the rollups avoid.

Usage (with the demo's environment, e.g. after bin/demo; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/pages.py [--runs 50000] [--days 90]

Creates a scratch tenant ``bench-pages`` with ``--runs`` runs over ``--days`` days from the demo
generator (about 1,000,000 LLM events for 50,000 runs), its bills, allocation and forecast, and
its runtime metrics (``benchmarks/runtime_series.py``: 132 series, raw points for 24 hours,
minutes for 14 days, hours for 30 days) for the Status, Factory health and Queues pages; then
requests each page ``--repeat`` times through Django's full stack (middleware, tenant routing,
session, templates: everything but the socket) and prints p50/p95 server time and the number of
SQL queries per page. It then times the daily cost by project over the last 30 days computed
from raw events against the same figure from the daily rollup, and drops the tenant (unless
``--keep``).
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
os.environ.setdefault("PORTAL_SECURE", "0")  # plain HTTP to the in-process client

PASSWORD = secrets.token_urlsafe(16)  # a scratch tenant: a fresh password each run


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the tenant afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure an existing bench tenant")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from benchmarks.runtime_series import runtime_series_seed
    from factory_portal.accounts.services import user_create
    from factory_portal.tenants.services import (
        tenant_delete,
        tenant_domain,
    )
    from usage.models import LlmUsageEvent, Run

    slug = "bench-pages"
    now = timezone.now()
    tenant = big_tenant(
        slug=slug, runs=args.runs, days=args.days, password=PASSWORD, reuse=args.reuse
    )

    with schema_context(tenant.schema_name):
        runtime_series_seed(now=now)
        runs = Run.objects.count()
        events = LlmUsageEvent.objects.count()
        some_run = Run.objects.filter(status="Succeeded").order_by("-requested_at").first()
        for role in ("member", "finance"):
            email = f"{role}@bench.test"
            if not _exists(email):
                user_create(email=email, role=role, password=PASSWORD)
    print(f"tenant_runs {runs}")
    print(f"tenant_llm_events {events}")

    host = tenant_domain(slug)
    settings.ALLOWED_HOSTS.append(host)
    client = Client(HTTP_HOST=host)
    login = client.post("/login/", {"username": "admin@bench.test", "password": PASSWORD})
    if login.status_code != 302:
        sys.exit("could not log in to the bench tenant ")
    pages = {
        "overview": "/",
        "active runs": "/runs/active/",
        "active runs (poll)": "/runs/active/?fragment=1",
        "run history": "/runs/",
        "run history, failed": "/runs/?status=Failed",
        "run history, search": f"/runs/?q={some_run.run_id[:8]}",
        "run details": f"/runs/{some_run.run_id}/",
        "usage, 30 days": "/usage/",
        "usage, per week": "/usage/?grain=week",
        "steps, 30 days": "/steps/",
        "steps, 90 days by template": "/steps/?days=90&by=template",
        "run history, step filter": "/runs/?step=build",
        "costs": "/costs/",
        "costs by model per week": "/costs/?by=model&grain=week",
        "reports": "/reports/",
        "budgets": "/budgets/",
        "notifications": "/notifications/",
        "api keys": "/settings/api-keys/",
        "users": "/settings/users/",
        "status": "/status/",
        "factory health, 1 h": "/health/factory/?range=1h",
        "factory health, 24 h": "/health/factory/?range=24h",
        "factory health, 7 days": "/health/factory/?range=7d",
        "factory health, 30 days": "/health/factory/?range=30d",
        "queues, 1 h": "/health/queues/?range=1h",
        "queues, 24 h": "/health/queues/?range=24h",
        "queues, 7 days": "/health/queues/?range=7d",
        "queues, 30 days": "/health/queues/?range=30d",
        # Issue 18: the one time range, filters, drill-down targets, saved views.
        "overview, last month": "/?range=last_month",
        "overview, 90 days": "/?range=90d",
        "costs, 7 days": "/costs/?range=7d",
        "costs, last month": "/costs/?range=last_month",
        "costs, 90 days by model": "/costs/?range=90d&by=model",
        "usage, 90 days": "/usage/?range=90d",
        "usage, project filter": "/usage/?range=30d&project=checkout-service",
        "usage, model filter": "/usage/?range=7d&model=claude-sonnet-4-5",
        "steps, last month": "/steps/?range=last_month",
        "errors, 90 days": "/errors/?range=90d",
        "run history, substring": f"/runs/?q={some_run.run_id[-7:-1]}",
        "run history, model": "/runs/?model=claude-sonnet-4-5",
        "run history, costliest 7 days": "/runs/?range=7d&sort=costliest",
        "run history, costliest": "/runs/?sort=costliest",
        "saved views": "/saved/",
    }
    # The second page of the run history, through its keyset cursor.
    first = client.get("/runs/").content.decode()
    marker = 'data-testid="next-page"'
    if marker in first:
        href = first[: first.index(marker)].rsplit('href="', 1)[1].split('"', 1)[0]
        pages["run history, page 2"] = "/runs/" + href.replace("&amp;", "&")

    print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    worst = 0.0
    for name, path in pages.items():
        response = client.get(path)
        if response.status_code != 200:
            print(f"{name:28} status {response.status_code}")
            continue
        queries: list[str] = []

        def count(execute, sql, params, many, context, queries=queries):  # type: ignore[no-untyped-def]
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            client.get(path)
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
        p95 = _percentile(timings, 0.95)
        worst = max(worst, p95)
        print(f"{name:28} {statistics.median(timings):8.1f} {p95:8.1f} {len(queries):8d}")
    print(f"worst_page_p95_ms {worst:.1f}")

    # What the rollups avoid: the 30-day daily cost by project from raw events.
    start = (now - timedelta(days=29)).date()
    naive = (
        "SELECT date_trunc('day', occurred_at AT TIME ZONE 'UTC') AS day, project_id, SUM(cost) "
        "FROM usage_llmusageevent WHERE occurred_at >= %s GROUP BY 1, 2"
    )
    rollup = (
        "SELECT day, project_id, SUM(cost) FROM usage_llmusagedaily WHERE day >= %s GROUP BY 1, 2"
    )
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        for name, sql, param in (
            ("naive_raw_events", naive, now - timedelta(days=29)),
            ("rollup", rollup, start),
        ):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                cursor.execute(sql, [param])
                cursor.fetchall()
                times.append((time.perf_counter() - started) * 1000)
            print(f"daily_cost_by_project_30d_{name}_ms {min(times):.1f}")

    if not args.keep:
        tenant_delete(tenant=tenant)


def _exists(email: str) -> bool:
    from factory_portal.accounts.models import User

    return User.objects.filter(email=email).exists()


if __name__ == "__main__":
    main()
