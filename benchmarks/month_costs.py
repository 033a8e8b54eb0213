"""A big tenant's month of cost figures from the run ledger, against recomputing them from raw
events (what the cost report did before the ledger), measured in the same run.

Usage (with the demo's environment; DEBUG=0 so no query log is kept):
    DEBUG=0 SECRET_KEY=bench .venv/bin/python benchmarks/month_costs.py [--runs 50000] [--days 90]

Creates (or with ``--reuse`` reuses) the page benchmark's scratch tenant (``benchmarks/big_tenant``:
``--runs`` runs over ``--days`` days, about 28 LLM calls a run; ``--runs 352000`` gives about
3.3 million calls a month), then prints for the last whole month (the scratch tenant takes no
part in allocation, so no infrastructure is spread over its runs):
- ``ledger_run_usage_s``: every run's AI cost and driver quantities from the ledger;
- ``raw_run_usage_s``: the same from the raw events, jobs and corrections (the old queries,
  retried attempts included);
- ``cost_report_s``: the whole cost report (totals, runs, infrastructure spread over runs);
- ``cost_summary_s``: what the costs page computes when its cache is cold;
and checks that ledger and raw agree to the cent for every run. Best of ``--repeat``.
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

PASSWORD = secrets.token_urlsafe(16)

RAW_QUERIES = {  # the per-run reads of the cost report before the run ledger
    "llm": "SELECT run_id, sum(input_tokens + output_tokens), sum(cost) FROM usage_llmusageevent"
    " WHERE occurred_at >= %(start)s AND occurred_at < %(end)s AND run_id IS NOT NULL"
    " GROUP BY run_id",
    "corrections": "SELECT c.run_id, sum(c.delta) FROM usage_llmcostcorrection c"
    " JOIN usage_llmusageevent e ON e.event_id = c.event_id"
    " WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s AND c.run_id IS NOT NULL"
    " GROUP BY c.run_id",
    "infra": "SELECT run_id, unit, sum(quantity) FROM usage_infrausageevent"
    " WHERE occurred_at >= %(start)s AND occurred_at < %(end)s AND run_id IS NOT NULL"
    " AND unit IN ('cpu_seconds', 'gb_hours') GROUP BY run_id, unit",
    "jobs": "SELECT run_id, sum(duration_ms) FROM usage_job WHERE started_at >= %(start)s"
    " AND started_at < %(end)s AND duration_ms IS NOT NULL GROUP BY run_id",
    "retried": "SELECT e.run_id, sum(e.cost) FROM usage_llmusageevent e"
    " WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s AND e.job_id IN ("
    " SELECT j.id FROM usage_job j WHERE j.attempt < (SELECT max(k.attempt) FROM usage_job k"
    " WHERE k.run_id = j.run_id AND k.job_id = j.job_id)) GROUP BY e.run_id",
}


def _best(repeat: int, work):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the tenant afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure an existing bench tenant")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from benchmarks.big_tenant import big_tenant
    from billing.selectors.costs import cost_report
    from billing.selectors.summaries import cost_summary
    from factory_portal.periods import (
        local_bounds,
        local_date,
        month_of,
        next_month,
        previous_month,
        zone,
    )
    from factory_portal.tenants.services import tenant_delete
    from usage import selectors as usage_selectors
    from usage.models import LlmUsageDaily

    tenant = big_tenant(
        slug="bench-pages", runs=args.runs, days=args.days, password=PASSWORD, reuse=args.reuse
    )
    tz = zone(tenant.timezone)
    month = previous_month(month_of(local_date(timezone.now(), tz)))  # the last whole month
    start, end = local_bounds(month, next_month(month), tz)
    with schema_context(tenant.schema_name):
        calls = sum(
            LlmUsageDaily.objects.filter(day__gte=month, day__lt=next_month(month)).values_list(
                "calls", flat=True
            )
        )
        print(f"month {month:%Y-%m}")
        print(f"month_llm_calls {calls}")
        ledger_s, usages = _best(
            args.repeat, lambda: usage_selectors.run_usage(start=month, end=next_month(month))
        )
        print(f"month_runs {len(usages)}")

        def raw():  # type: ignore[no-untyped-def]
            out = {}
            with connection.cursor() as cursor:
                for name, sql in RAW_QUERIES.items():
                    cursor.execute(sql, {"start": start, "end": end})
                    out[name] = cursor.fetchall()
            return out

        raw_s, raw_rows = _best(args.repeat, raw)
        raw_cost: dict[int, Decimal] = {}
        for run_id, _tokens, cost in raw_rows["llm"]:
            raw_cost[run_id] = cost or Decimal(0)
        for run_id, delta in raw_rows["corrections"]:
            raw_cost[run_id] = raw_cost.get(run_id, Decimal(0)) + delta
        from usage.models import Run

        pks = dict(Run.objects.values_list("run_id", "pk"))
        ledger_cost = {pks[u.run_id]: u.token_cost for u in usages if u.token_cost}
        raw_cost = {k: v for k, v in raw_cost.items() if v}
        agree = ledger_cost == raw_cost
        print(f"ledger_run_usage_s {ledger_s:.3f}")
        print(f"raw_run_usage_s {raw_s:.3f}")
        print(f"ledger_vs_raw_speedup {raw_s / ledger_s:.1f}x")
        print(f"ledger_equals_raw_per_run {agree}")
        report_s, report = _best(args.repeat, lambda: cost_report(tenant=tenant, period=month))
        print(f"cost_report_s {report_s:.3f}")
        summary_s, _ = _best(
            args.repeat, lambda: cost_summary(tenant=tenant, period=month, refresh=True)
        )
        print(f"cost_summary_s {summary_s:.3f}")
        print(f"month_total_usd {report.total:.2f}")
        if not agree:
            sys.exit("the ledger and the raw events disagree")
    if not args.keep:
        tenant_delete(tenant=tenant)


if __name__ == "__main__":
    main()
