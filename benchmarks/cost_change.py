"""Time of "why did cost change?" for a big tenant: the decomposition of two periods computed
from the rollups, the run ledger and the price book (cold: no cached result), and served from
the cache, for 7, 30 and 90 days against the previous period of equal length.

Usage (with the demo's environment; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/cost_change.py [--runs 52000] [--days 90]

Creates (or with ``--reuse`` measures) the scratch tenant ``bench-change`` from the demo
generator (about 28 LLM calls a run: 52,000 runs give about 1.5 million calls), prints one line
per figure (p50/p95 of ``--repeat`` computations) and the parts of the 30-day answer, then drops
the tenant unless ``--keep``.
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


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=52_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.cache import cache
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from billing.selectors.cost_change import period_cost_change
    from factory_portal import periods, ranges
    from factory_portal.tenants.services import tenant_delete
    from usage.models import LlmUsageEvent, Run

    tenant = big_tenant(
        slug="bench-change",
        runs=args.runs,
        days=args.days,
        password=secrets.token_urlsafe(16),
        reuse=args.reuse,
    )
    try:
        with schema_context(tenant.schema_name):
            print(f"tenant: {Run.objects.count():,} runs, {LlmUsageEvent.objects.count():,} calls")
            today = periods.local_date(timezone.now(), periods.zone(tenant.timezone))
            for days in (7, 30, 90):
                after = ranges.DayRange(today - timedelta(days=days - 1), today)
                before = after.previous()
                timed = {"cold": [], "cached": []}
                for _ in range(args.repeat):
                    cache.clear()
                    for kind in ("cold", "cached"):
                        started = time.perf_counter()
                        change = period_cost_change(
                            tenant=tenant,
                            before=(before.start, before.end),
                            after=(after.start, after.end),
                        )
                        timed[kind].append((time.perf_counter() - started) * 1000)
                for kind, values in timed.items():
                    print(
                        f"cost change {days} days vs previous, {kind}: p50"
                        f" {statistics.median(values):.0f} ms, p95"
                        f" {_percentile(values, 0.95):.0f} ms"
                    )
                if days == 30:
                    print(f"  {change.before} -> {change.after}: {change.change}")
                    for part in change.parts:
                        print(f"  {part.part}: {part.amount}")
                        for line in part.lines[:3]:
                            print(f"    {line.text}")
    finally:
        if not args.keep:
            tenant_delete(tenant=tenant)


if __name__ == "__main__":
    main()
