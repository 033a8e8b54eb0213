"""``manage.py allocate --period YYYY-MM [--close] [--what-if]``"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.domain.allocation import Method
from billing.operator.services.allocation import (
    AllocationRefused,
    allocation_run,
    allocation_what_if,
)
from factory_portal.periods import PeriodError, month_parse, month_text


class Command(BaseCommand):
    help = (
        "Allocate the period's cost pools to tenants and projects (a draft is recomputed);"
        " --close freezes the month; --what-if compares the three methods without saving."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--period", required=True, help="YYYY-MM")
        parser.add_argument("--close", action="store_true", help="close the month afterwards")
        parser.add_argument("--what-if", action="store_true", help="compare methods, save nothing")

    def handle(self, *args, **options) -> None:
        try:
            period = month_parse(options["period"])
        except PeriodError as exc:
            raise CommandError(f"--period: {exc}") from exc
        if options["what_if"]:
            table = allocation_what_if(period)
            self.stdout.write(f"{'tenant':<16}" + "".join(f"{m:>18}" for m in Method.ALL))
            for tenant, amounts in sorted(table.items()):
                self.stdout.write(
                    f"{tenant:<16}" + "".join(f"{amounts[m]:>18,.2f}" for m in Method.ALL)
                )
            return
        try:
            outcome = allocation_run(period=period, close=options["close"])
        except AllocationRefused as exc:
            raise CommandError(str(exc)) from exc
        run = outcome.run
        if outcome.corrections:
            self.stdout.write(
                f"{month_text(period)} is closed: {outcome.corrections} correction lines "
                "written to the next open period."
            )
            return
        self.stdout.write(
            f"{month_text(period)} ({run.status}): {outcome.lines} lines, allocated "
            f"{outcome.allocated:,.2f}, unallocated {outcome.unallocated:,.2f}"
        )
