"""``manage.py forecast_backtest [--tenant X] [--csv FILE --date-col d --value-col v
[--timezone Area/City]]``: holidays are those of the tenant's (or the given) time zone's
country."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.domain.forecasting import (
    backtest,
    choose_method,
    country_of_timezone,
    daily_series,
)
from factory_portal.tenants.selectors import customer_tenants, tenant_by_slug
from usage import selectors as usage_selectors


class Command(BaseCommand):
    help = (
        "Rolling-origin backtest of the forecasting methods: MASE, sMAPE and 80%/95% interval"
        " coverage per series, for tenants' daily AI cost or any daily series in a CSV."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="one tenant (default: every tenant)")
        parser.add_argument("--csv", type=Path, help="evaluate a daily series from a CSV file")
        parser.add_argument("--date-col", default="date")
        parser.add_argument("--value-col", default="value")
        parser.add_argument("--timezone", default="UTC", help="where the CSV's series was kept")

    def handle(self, *args, **options) -> None:
        if options["csv"]:
            series = {options["csv"].name: (self._csv_series(options), options["timezone"])}
        else:
            series = self._tenant_series(options["tenant"])
        self.stdout.write(
            f"{'series':<32}{'method':<16}{'MASE':>8}{'sMAPE':>8}{'cov80':>8}{'cov95':>8}  chosen"
        )
        for name, (values, zone) in series.items():
            country = country_of_timezone(zone)
            chosen, _ = choose_method(values, country=country)
            for method in dict.fromkeys((chosen, "ets", "seasonal_naive")):
                result = backtest(values, method, country=country)
                if result is None:
                    self.stdout.write(
                        f"{name:<32}{method:<16}  (history too short: {len(values)} days)"
                    )
                    continue
                mark = "*" if method == chosen else ""
                self.stdout.write(
                    f"{name:<32}{method:<16}{result.mase:>8.3f}{result.smape:>8.3f}"
                    f"{result.coverage80:>8.2f}{result.coverage95:>8.2f}  {mark}"
                )

    def _csv_series(self, options) -> pd.Series:
        path: Path = options["csv"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        frame = pd.read_csv(path, dtype=str)
        for column in (options["date_col"], options["value_col"]):
            if column not in frame.columns:
                raise CommandError(
                    f"{path.name} has no column {column!r}; it has {', '.join(frame.columns)}"
                )
        values = {}
        for line, (day, value) in enumerate(
            zip(frame[options["date_col"]], frame[options["value_col"]], strict=True), start=2
        ):
            try:
                values[pd.Timestamp(day).date()] = Decimal(value)
            except (ValueError, InvalidOperation) as exc:
                raise CommandError(
                    f"line {line}: {day!r}, {value!r} is not a date and a number"
                ) from exc
        if not values:
            raise CommandError(f"{path.name} has no rows")
        return daily_series(values, min(values), max(values))

    def _tenant_series(self, slug: str | None) -> dict[str, tuple[pd.Series, str]]:
        if slug:
            tenant = tenant_by_slug(slug)
            if tenant is None:
                raise CommandError(f"No tenant with slug {slug!r}.")
            tenants = [tenant]
        else:
            tenants = list(customer_tenants())
        end = timezone.now().date() - timedelta(days=1)
        found = {}
        for tenant in tenants:
            with schema_context(tenant.schema_name):
                first = usage_selectors.first_usage_day()
                if first is None or first > end:
                    continue
                for project in ["", *usage_selectors.project_slugs()]:
                    values = usage_selectors.daily_token_cost(start=first, end=end, project=project)
                    name = f"{tenant.slug}/{project}" if project else tenant.slug
                    found[name] = (daily_series(values, first, end), tenant.timezone)
        return found
