"""``run_usage`` reads every measure of the run ledger (summed over a day's stripes and the
range's days), and a project's allocation drivers are exactly its runs' plus usage outside runs:
billing spreads each project's shared cost over its runs by these figures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from usage.domain.runs import RunUpdate
from usage.models import Run, RunLedger
from usage.selectors import allocation_drivers, run_usage
from usage.services.runs import runs_ingest

pytestmark = pytest.mark.django_db

START, END = date(2026, 8, 3), date(2026, 8, 6)


def _run(run_id: str) -> Run:
    at = datetime(2026, 8, 3, 9, tzinfo=UTC)
    runs_ingest(updates=[RunUpdate(0, run_id, "ledger-reads", "Running", at, requested_at=at)])
    return Run.objects.get(run_id=run_id)


def test_run_usage_reads_every_ledger_measure(alpha):
    with schema_context(alpha.schema):
        run = _run("ledger-reads-1")
        rows = [  # (day, stripe, calls, cost, cpu, gb, job_ms, tokens in/out, events)
            (START, 0, 3, "0.30", "10.5", "0.25", 1500, (100, 40), 2),
            (START, 4, 1, "0.05", "1.5", "0", 500, (10, 5), 1),
            (date(2026, 8, 4), 0, 2, "0.20", "0", "0.75", 12_000, (50, 10), 0),
            (END, 0, 9, "9.00", "99", "9", 99_000, (999, 999), 9),  # the day after the range
        ]
        for day, stripe, calls, cost, cpu, gb, job_ms, (tin, tout), events in rows:
            RunLedger.objects.update_or_create(
                run=run,
                day=day,
                stripe=stripe,
                defaults={
                    "calls": calls,
                    "cost": Decimal(cost),
                    "cpu_seconds": Decimal(cpu),
                    "gb_hours": Decimal(gb),
                    "job_ms": job_ms,
                    "input_tokens": tin,
                    "output_tokens": tout,
                    "infra_events": events,
                },
            )
        (usage,) = [u for u in run_usage(start=START, end=END) if u.run_id == run.run_id]
        drivers = allocation_drivers(start=START, end=END)

    assert usage.calls == 6
    assert usage.token_cost == Decimal("0.55")
    assert usage.drivers["tokens"] == Decimal(215)
    assert usage.drivers["cpu_seconds"] == Decimal("12.0")
    assert usage.drivers["gb_hours"] == Decimal("1.00")
    assert usage.drivers["job_seconds"] == Decimal("14")  # 1.5 + 0.5 + 12 seconds
    assert usage.drivers["runs"] == 1
    # The project's run-based drivers are its runs' (this is its only run).
    assert drivers["job_seconds"]["ledger-reads"] == usage.drivers["job_seconds"]
    assert drivers["runs"]["ledger-reads"] == 1
