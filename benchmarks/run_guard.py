"""Run guard answers on the page benchmark's big tenant: ``GET /api/v1/runs/{run_id}/guard``
for its active runs under a run budget (a multiple of the P90 quote: the quote is read too),
cold (first answer per template, quote and step expectations computed) and warm, one pass
of the guard over every active run (what the debounced task does after ingest), and how long a
run's projected total takes to follow new usage: an LLM call posted to ``/api/v1/events`` for
an active run, then the live answer (``GET .../guard`` right after) and the stored guard (the
debounced pass in a real Celery worker started here) polled until they include it.

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
# Latency, not throttling: thousands of reads from one key in a minute.
os.environ.setdefault("API_RATE_READ", "1000000/min")
os.environ.setdefault("API_RATE_INGEST", "1000000/min")

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
    parser.add_argument("--latency", type=int, default=20, help="ingests to follow (0: none)")
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
        _, ingest_key = api_key_create(name="bench-ingest", scopes=["ingest"])
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
            answer = client.get(f"/api/v1/runs/{run_id}/guard")
            warm.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                sys.exit(f"guard of {run_id}: {answer.status_code} {answer.content!r}")
    print(
        f"guard_warm_ms p50 {_percentile(warm, 0.5):.1f} p95 {_percentile(warm, 0.95):.1f}"
        f" ({len(warm)} answers)"
    )
    with schema_context(tenant.schema_name):
        started = time.perf_counter()
        stored = run_guards_refresh()
        print(f"guard_pass_ms {(time.perf_counter() - started) * 1000:.1f} ({stored} runs)")
    if args.latency:
        _follow_ingest(tenant, host, raw, ingest_key, active, args.latency)
    if not args.keep:
        tenant_delete(tenant=tenant)


def _follow_ingest(tenant, host, read_key, ingest_key, active, count):  # type: ignore[no-untyped-def]
    """Post one LLM call (client-supplied cost $0.50) to an active run ``count`` times and print
    how long the live guard answer and the stored guard took to include it."""
    import json
    import subprocess
    import tempfile
    import uuid

    from django.db import connections
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.models import RunGuard
    from usage.models import Run

    log = Path(tempfile.mkstemp(prefix="guard-worker-", suffix=".log")[1])
    worker = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "factory_portal",
            "worker",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--hostname",
            f"bench-guard-{uuid.uuid4().hex[:6]}@%h",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Celery worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        reader = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {read_key}")
        sender = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
        with schema_context(tenant.schema_name):
            projects = dict(
                Run.objects.filter(run_id__in=[r for r, _ in active]).values_list(
                    "run_id", "project__slug"
                )
            )
        live, stored = [], []
        for i in range(count):
            run_id = active[i % len(active)][0]
            before = json.loads(reader.get(f"/api/v1/runs/{run_id}/guard").content)
            with schema_context(tenant.schema_name):
                row = RunGuard.objects.filter(run__run_id=run_id).first()
            want = (row.cost_so_far if row is not None else Decimal(0)) + Decimal("0.5")
            event = {
                "type": "llm",
                "event_id": f"bench-guard-{uuid.uuid4().hex}",
                "timestamp": timezone.now().isoformat(),
                "project": projects[run_id],
                "run_id": run_id,
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "operation": "chat",
                "input_tokens": 1000,
                "output_tokens": 100,
                "cost": "0.50",
            }
            sent = time.monotonic()
            answer = sender.post(
                "/api/v1/events", {"events": [event]}, content_type="application/json"
            )
            if answer.status_code != 200:
                sys.exit(f"ingest: {answer.status_code} {answer.content!r}")
            after = json.loads(reader.get(f"/api/v1/runs/{run_id}/guard").content)
            if "cost_so_far" not in after:
                sys.exit(f"guard of {run_id}: {after}")
            if Decimal(after["cost_so_far"]) < Decimal(before["cost_so_far"]) + Decimal("0.5"):
                sys.exit(f"the live answer missed the call: {before} -> {after}")
            live.append(time.monotonic() - sent)
            while True:
                connections.close_all()  # a fresh snapshot
                with schema_context(tenant.schema_name):
                    row = RunGuard.objects.filter(run__run_id=run_id).first()
                if row is not None and row.cost_so_far >= want:
                    stored.append(time.monotonic() - sent)
                    break
                if time.monotonic() - sent > 60:
                    sys.exit(
                        f"the stored guard of {run_id} did not follow in 60 s:"
                        f" {log.read_text(errors='replace')[-3000:]}"
                    )
                time.sleep(0.05)
        print(f"guard_live_after_ingest_s max {max(live):.3f}")
        print(
            f"guard_stored_after_ingest_s p50 {_percentile(stored, 0.5):.2f}"
            f" max {max(stored):.2f} ({count} ingests, target 5)"
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
