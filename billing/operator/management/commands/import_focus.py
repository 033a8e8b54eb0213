"""``manage.py import_focus FILE [--period YYYY-MM] [--pool-tag KEY]``"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.operator.services.focus import FocusImportError, focus_import
from factory_portal.periods import PeriodError, month_parse, month_text


class Command(BaseCommand):
    help = (
        "Import a FOCUS 1.0-1.2 cost-and-usage CSV into cost pools (by provider, service category,"
        " charge category and optionally a tag). Importing the same file again changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--period",
            help="YYYY-MM: put every charge in this billing period (default: each "
            "row's BillingPeriodStart)",
        )
        parser.add_argument("--pool-tag", default="", help="split pools by this tag's value")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        period = None
        if options["period"]:
            try:
                period = month_parse(options["period"])
            except PeriodError as exc:
                raise CommandError(f"--period: {exc}") from exc
        interactive = sys.stderr.isatty()

        def progress(rows: int, done: int, total: int) -> None:
            percent = 100 * done // max(total, 1)
            end = "" if interactive and done < total else "\n"
            self.stderr.write(f"\r  {rows:,} rows read ({percent}%)", ending=end)

        try:
            result = focus_import(
                path=path, period=period, pool_tag=options["pool_tag"], progress=progress
            )
        except FocusImportError as exc:
            first, *rows = exc.lines()
            raise CommandError(
                "\n".join([f"{path.name}: {first}. Nothing was imported.", *rows])
            ) from exc
        record = result.focus_import
        if not result.created:
            self.stdout.write(
                f"{path.name} was already imported on {record.imported_at:%Y-%m-%d %H:%M} "
                f"(same content); nothing changed."
            )
            return
        periods = ", ".join(
            f"{month_text(p)}: {n:,} rows" for p, n in sorted(result.rows_by_period.items())
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {record.rows:,} charges (FOCUS {record.focus_version}) into "
                f"{result.pools} cost pools ({periods})."
            )
        )
        self.stdout.write(
            f"BilledCost {record.billed_cost.normalize():f}, EffectiveCost "
            f"{record.effective_cost.normalize():f}, ListCost {record.list_cost.normalize():f}"
        )
