"""``manage.py report --tenant acme --month YYYY-MM --format csv|xlsx|focus -o FILE`` and
``manage.py report --customers --month YYYY-MM -o FILE`` (operator: cost per customer)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from billing.exports import write_csv, write_customers_csv, write_focus, write_xlsx
from billing.selectors.costs import cost_report
from factory_portal.periods import PeriodError, month_parse, month_text
from factory_portal.tenants.selectors import customer_tenants, tenant_by_slug
from usage.selectors.partitions import RawEventsExpired, raw_month_check


class Command(BaseCommand):
    help = "Write a tenant's monthly finance report, or the operator's cost per customer."

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant")
        target.add_argument("--customers", action="store_true", help="every tenant's totals")
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--format", choices=["csv", "xlsx", "focus"], default="csv")
        parser.add_argument("-o", "--output", type=Path, required=True)

    def handle(self, *args, **options) -> None:
        try:
            period = month_parse(options["month"])
        except PeriodError as exc:
            raise CommandError(f"--month: {exc}") from exc
        output: Path = options["output"]
        if output.is_dir():
            raise CommandError(f"-o {output}: is a directory; name the file to write.")
        if not output.parent.is_dir():
            raise CommandError(f"-o {output}: the directory {output.parent} does not exist.")
        try:
            self._report(options, period, output)
        except OSError as exc:  # no permission, a full disk: said, not a traceback
            raise CommandError(f"-o {output}: {exc.strerror or exc}") from exc

    def _report(self, options: dict[str, Any], period: date, output: Path) -> None:
        if options["customers"]:
            rows = []
            for tenant in customer_tenants():
                with schema_context(tenant.schema_name):
                    report = cost_report(tenant=tenant, period=period)
                rows.append((tenant.slug, tenant.name, report.token_cost, report.infra_cost))
            with output.open("w", newline="") as handle:
                total = write_customers_csv(rows, month_text(period), handle)
            self.stdout.write(f"{len(rows)} customers, total {total:,.2f} USD -> {output}")
            return
        tenant = tenant_by_slug(options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        try:
            raw_month_check(tenant=tenant, month=period)
        except RawEventsExpired as exc:
            raise CommandError(f"{tenant.slug} {month_text(period)}: {exc}") from exc
        with schema_context(tenant.schema_name):
            report = cost_report(tenant=tenant, period=period)
            if options["format"] == "xlsx":
                with output.open("wb") as handle:
                    write_xlsx(report, handle)
                total = None
            else:
                writer = write_csv if options["format"] == "csv" else write_focus
                with output.open("w", newline="") as handle:
                    total = writer(report, handle)
        shown = f", total {total:,.2f} USD" if total is not None else ""
        self.stdout.write(
            f"{tenant.slug} {month_text(period)} ({options['format']}, allocation "
            f"{report.allocation_status}){shown} -> {output}"
        )
