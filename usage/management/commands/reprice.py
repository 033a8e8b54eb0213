"""``manage.py reprice --tenant acme --start 2026-10-01 --end 2026-11-01 --reason "..."``"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from factory_portal.periods import PeriodError, moment_parse, zone
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.selectors import customer_tenants, tenant_by_slug
from usage.domain.retention import RawEventsExpired
from usage.pricing import pricer_for
from usage.services.reprice import llm_reprice


def _moment(value: str, name: str, tenant: Tenant) -> datetime:
    """A date alone is the tenant's day (from its midnight in its time zone, as its pages count
    days); a date-time without an offset is UTC."""
    try:
        return moment_parse(value, day_zone=zone(tenant.timezone))
    except PeriodError as exc:
        raise CommandError(f"--{name}: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Re-price LLM calls of a period with the current price book and contract overrides. Each"
        " changed call gets a correction entry; stored costs are not rewritten."
    )

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="tenant slug")
        target.add_argument("--all-tenants", action="store_true")
        parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD (the tenant's)")
        parser.add_argument("--end", required=True, help="day after the last (the tenant's)")
        parser.add_argument("--reason", required=True, help="why, e.g. 'gpt-4.1 price fix'")
        parser.add_argument("--dry-run", action="store_true", help="report, change nothing")

    def handle(self, *args, **options) -> None:
        if options["all_tenants"]:
            tenants = list(customer_tenants())
        else:
            tenant = tenant_by_slug(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
            tenants = [tenant]
        periods = {}
        for tenant in tenants:  # every period checked before any tenant is re-priced
            start = _moment(options["start"], "start", tenant)
            end = _moment(options["end"], "end", tenant)
            if end <= start:
                raise CommandError("--end must be after --start.")
            periods[tenant.pk] = start, end
        refused = []
        for tenant in tenants:
            start, end = periods[tenant.pk]
            try:
                with schema_context(tenant.schema_name):
                    result = llm_reprice(
                        start=start,
                        end=end,
                        pricer=pricer_for(tenant),
                        reason=options["reason"],
                        dry_run=options["dry_run"],
                    )
            except RawEventsExpired as exc:
                refused.append(f"{tenant.slug}: {exc}")
                continue
            verb = "would correct" if options["dry_run"] else "corrected"
            self.stdout.write(
                f"{tenant.slug}: {result.examined:,} calls examined, {verb} {result.corrected:,}"
                f" ({result.newly_priced:,} newly priced), cost change ${result.delta:,.10f}"
            )
        if refused:
            raise CommandError("Not re-priced (raw events past retention):\n" + "\n".join(refused))
