"""Latency of the read API for a big tenant, at 1 and at 8 concurrent clients.

Usage (the demo's environment; DEBUG=0 so the server runs as in production):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/api.py [--reuse] [--keep]
        [--runs 50000] [--days 90] [--requests 200] [--workers 4]

Seeds (or with ``--reuse`` keeps) the scratch tenant ``bench-api`` from the demo generator
(50,000 runs, about 1.4 million LLM calls over 90 days), starts gunicorn on a loopback port and
times over HTTP, per concurrency level:
- ``GET /api/v1/usage`` for the last 30 days per day grouped by project and model, and per hour
  for the last 2 days grouped by model;
- ``GET /api/v1/runs`` first pages and the pages that follow (keyset cursors), and a failed-runs
  filter.
Prints p50/p95/max in ms and requests/s per endpoint and concurrency; the rate limit is raised for
the run (``API_RATE_READ``) so the benchmark measures latency, not throttling.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory_portal.settings")
os.environ.setdefault("PORTAL_SECURE", "0")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(
    port: int, host: str, key: str, paths: list[str], clients: int
) -> tuple[list[float], float]:
    """Each client sends its share of ``paths`` one after the other on a kept-alive connection."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(share: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for path in share:
            started = time.perf_counter()
            connection.request(
                "GET", path, headers={"Host": host, "Authorization": f"Bearer {key}"}
            )
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    errors.append(f"{response.status} {path}")
        connection.close()

    shares = [paths[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from benchmarks.server import gunicorn
    from factory_portal.accounts.services import api_key_create
    from factory_portal.tenants.services import tenant_delete, tenant_domain
    from usage.models import LlmUsageEvent, Run

    tenant = big_tenant(
        slug="bench-api",
        runs=args.runs,
        days=args.days,
        password=secrets.token_urlsafe(16),
        reuse=args.reuse,
    )
    with schema_context(tenant.schema_name):
        print(f"tenant_runs {Run.objects.count()}")
        print(f"tenant_llm_events {LlmUsageEvent.objects.count()}")
        _, key = api_key_create(name="bench", scopes=["read"])
    host = tenant_domain("bench-api")
    today = timezone.now().date()
    day = today.isoformat()
    start_30 = (today - timedelta(days=30)).isoformat()
    start_2 = (today - timedelta(days=2)).isoformat()

    try:
        with gunicorn(workers=args.workers, env={"API_RATE_READ": "1000000/min"}) as port:
            _measure(port, host, key, args, start_30, start_2, day)
    finally:
        if not args.keep:
            tenant_delete(tenant=tenant)


def _measure(
    port: int, host: str, key: str, args: argparse.Namespace, start_30: str, start_2: str, day: str
) -> None:
    """Time each endpoint at 1 and 8 clients and print one line per pair."""
    # Cursors of the first pages, for "pages that follow".
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    cursors, cursor = [], ""
    for _ in range(10):
        connection.request(
            "GET",
            f"/api/v1/runs?limit=100{cursor}",
            headers={"Host": host, "Authorization": f"Bearer {key}"},
        )
        following = json.loads(connection.getresponse().read())["next_cursor"]
        if following is None:  # a small tenant has fewer pages
            break
        cursors.append(following)
        cursor = f"&cursor={following}"
    connection.close()
    endpoints = {
        "usage_30d_by_day_project_model": [
            f"/api/v1/usage?start={start_30}&end={day}T23:59:59Z&group_by=project,model"
        ],
        "usage_48h_by_hour_model": [
            f"/api/v1/usage?start={start_2}&granularity=hour&group_by=model"
        ],
        "runs_pages": ["/api/v1/runs?limit=100"]
        + [f"/api/v1/runs?limit=100&cursor={c}" for c in cursors],
        "runs_failed": ["/api/v1/runs?status=Failed&limit=50"],
    }
    for paths in endpoints.values():  # warm every worker
        _run(port, host, key, paths * args.workers, args.workers)
    print(f"{'endpoint':34} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'req/s':>7}")
    for clients in (1, 8):
        for name, paths in endpoints.items():
            batch = [paths[i % len(paths)] for i in range(args.requests)]
            latencies, seconds = _run(port, host, key, batch, clients)
            print(
                f"{name:34} {clients:7d} {statistics.median(latencies):8.1f}"
                f" {_percentile(latencies, 0.95):8.1f} {max(latencies):8.1f}"
                f" {len(latencies) / seconds:7.1f}"
            )


if __name__ == "__main__":
    main()
