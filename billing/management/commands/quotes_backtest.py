"""``manage.py quotes_backtest [--tenant SLUG] [--days 30]``: how well quotes are calibrated.

For every run that finished in the last ``--days`` local days, the P90 AI cost it would have
been quoted from the runs that finished in the 30 days before the day it was requested (that day
excluded: no look-ahead), by the live quote's rules (``billing.domain.quotes``); prints per
template and overall how often its actual AI cost fell at or under that P90 (the target is
85-95%), and the runs skipped for want of history.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.domain.quotes import BacktestResult, BacktestRun, Sample, backtest
from billing.selectors.quotes import HISTORY_DAYS, sample_of
from factory_portal.periods import local_date, zone
from factory_portal.tenants.selectors import customer_tenants, tenant_by_slug
from usage.selectors.run_history import SAMPLE_CAP, finished_runs

RUNS_READ = 500_000  # finished runs read per tenant at most (the newest)
MAX_DAYS = 366


class Command(BaseCommand):
    help = (
        "Backtest of run quotes: how often each run's actual AI cost fell at or under the P90"
        " quoted from the history before it, per template and overall."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", help="one tenant's slug (default: every tenant)")
        parser.add_argument("--days", type=int, default=30, help="runs finished in these days")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        days = options["days"]
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}, not {days}.")
        if options["tenant"]:
            tenant = tenant_by_slug(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
            tenants = [tenant]
        else:
            tenants = list(customer_tenants())
        for tenant in tenants:
            with schema_context(tenant.schema_name):
                today = local_date(timezone.now(), zone(tenant.timezone))
                self._tenant(tenant.slug, today, days)

    def _tenant(self, slug: str, today, days: int) -> None:  # type: ignore[no-untyped-def]
        first = today - timedelta(days=days - 1)
        read = finished_runs(start=first - timedelta(days=HISTORY_DAYS), end=today, cap=RUNS_READ)
        history: dict[str, list[Sample]] = {}
        for run in read:
            history.setdefault(run.template, []).append(sample_of(run))
        targets = [
            BacktestRun(
                template=run.template,
                project=run.project,
                run_type=run.run_type,
                requested_on=run.requested_on,
                ai_cost=run.ai_cost,
            )
            for run in read
            if run.finished_on >= first
        ]
        results = backtest(history=history, runs=targets, days=HISTORY_DAYS, cap=SAMPLE_CAP)
        self.stdout.write(
            f"{slug}: runs finished {first} to {today}, quoted from the {HISTORY_DAYS} days"
            " before each run's request day"
            + (f" (only the newest {RUNS_READ:,} runs read)" if len(read) >= RUNS_READ else "")
        )
        self.stdout.write(
            f"  {'template':<40}{'runs':>8}{'quoted':>8}{'skipped':>9}{'<= P90':>8}{'coverage':>10}"
        )
        overall = BacktestResult()
        for template, result in sorted(results.items()):
            overall = BacktestResult(
                overall.runs + result.runs,
                overall.quoted + result.quoted,
                overall.covered + result.covered,
            )
            self.stdout.write(f"  {(template or '(none)')[:39]:<40}{self._line(result)}")
        self.stdout.write(f"  {'overall':<40}{self._line(overall)}")

    @staticmethod
    def _line(result: BacktestResult) -> str:
        coverage = "-" if result.coverage is None else f"{result.coverage * 100:.1f}%"
        return (
            f"{result.runs:>8}{result.quoted:>8}{result.skipped:>9}{result.covered:>8}"
            f"{coverage:>10}"
        )
