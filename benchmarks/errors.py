"""Error ingest rate and the server time of the errors pages and API for a tenant with many errors.

Usage (with the demo's environment; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/errors.py [--errors 200000] [--days 30]

Creates a scratch tenant ``bench-errors`` and stores ``--errors`` errors over ``--days`` days
through the ingest service (``span_errors_ingest``, batches of 5,000, as a traces request would),
spread over ``--groups`` error groups (a few frequent, a long tail), 20 errors a run, 8 templates
and 12 steps; prints errors stored per second; then requests ``/errors/`` (each sort, a later
page), the biggest group's page and ``GET /api/v1/errors`` ``--repeat`` times through Django's full
stack and prints p50/p95 server time and queries per page. Drops the tenant unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import random
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
TRACE = """Traceback (most recent call last):
  File "/srv/factory/app/pipeline/run.py", line 88, in execute
    result = step.run(ctx)
  File "/srv/factory/app/steps/{step}.py", line {line}, in run_{group}
    client.apply(manifest)
  File "/usr/local/lib/python3.12/site-packages/kubernetes/client/api.py", line 512, in apply
    raise ApiException(status=409)
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--errors", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from factory_portal.tenants.selectors import tenant_by_slug
    from factory_portal.tenants.services import (
        public_tenant_ensure,
        tenant_create,
        tenant_delete,
        tenant_domain,
    )
    from usage.domain.errors import ErrorIn
    from usage.models import ErrorGroup
    from usage.services.errors import span_errors_ingest

    slug = "bench-errors"
    public_tenant_ensure()
    if (old := tenant_by_slug(slug)) is not None:
        tenant_delete(tenant=old)
    tenant = tenant_create(
        slug=slug, name="Benchmark errors", admin_email="admin@bench.test", admin_password=PASSWORD
    ).tenant
    rng = random.Random(7)
    now = timezone.now()
    span = timedelta(days=args.days).total_seconds()
    weights = [1 / (g + 1) for g in range(args.groups)]  # Zipf: a few groups dominate
    batch: list[ErrorIn] = []
    stored = 0
    started = time.perf_counter()
    try:
        with schema_context(tenant.schema_name):
            for n in range(args.errors):
                group = rng.choices(range(args.groups), weights)[0]
                step = f"step-{group % 12}"
                run = n // 20
                batch.append(
                    ErrorIn(
                        trace_id=f"{run:032x}",
                        span_id=f"{n:016x}",
                        seq=0,
                        run_id=f"run-{run:07d}",
                        project=f"p{run % 5}",
                        job_id=step,
                        step_name=step,
                        attempt=1 + n % 3,
                        span_name="factory.job.execute",
                        source="exception",
                        occurred_at=now - timedelta(seconds=rng.random() * span),
                        type=f"Error{group}",
                        message=f"order {rng.randrange(10**6)} failed in 'tpl-{run % 8}'",
                        stacktrace=TRACE.format(step=step, line=rng.randrange(90), group=group),
                    )
                )
                if len(batch) == 5_000:
                    stored += span_errors_ingest(errors=batch)
                    batch = []
            stored += span_errors_ingest(errors=batch)
            seconds = time.perf_counter() - started
            with connection.cursor() as cursor:  # what autovacuum does soon after a bulk load
                cursor.execute("VACUUM ANALYZE usage_spanerror")
            biggest = ErrorGroup.objects.order_by("-occurrences").first()
            groups = ErrorGroup.objects.count()
        print(f"errors_stored {stored}")
        print(f"error_groups {groups}")
        print(f"errors_ingested_per_second {stored / seconds:.0f}")

        host = tenant_domain(slug)
        settings.ALLOWED_HOSTS.append(host)
        client = Client(HTTP_HOST=host)
        if (
            client.post(
                "/login/", {"username": "admin@bench.test", "password": PASSWORD}
            ).status_code
            != 302
        ):
            sys.exit("could not log in to the bench tenant")
        last = f"{args.days}"
        start = (now - timedelta(days=args.days - 1)).date().isoformat()
        pages = {
            "errors, 14 days": "/errors/",
            f"errors, {last} days": f"/errors/?from={start}",
            "errors, newest": "/errors/?sort=newest",
            "errors, most runs": "/errors/?sort=runs",
            "errors, page 5": "/errors/?page=5",
            "error group": f"/errors/{biggest.fingerprint}/" if biggest else "/errors/",
            f"error group, {last} days": f"/errors/{biggest.fingerprint}/?from={start}"
            if biggest
            else "/errors/",
            "api errors": "/api/v1/errors",
        }
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
                begun = time.perf_counter()
                client.get(path)
                timings.append((time.perf_counter() - begun) * 1000)
            p95 = _percentile(timings, 0.95)
            worst = max(worst, p95)
            print(f"{name:28} {statistics.median(timings):8.1f} {p95:8.1f} {len(queries):8d}")
        print(f"worst_errors_page_p95_ms {worst:.1f}")
    finally:
        if not args.keep:
            tenant_delete(tenant=tenant)


if __name__ == "__main__":
    main()
