"""``manage.py reprice --tenant acme --start 2026-10-01 --end 2026-11-01 --reason "..."``"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from factory_portal.tenants.selectors import customer_tenants, tenant_by_slug
from usage.domain.retention import RawEventsExpired
from usage.pricing import pricer_for
from usage.services.reprice import llm_reprice


def _day(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = (
        "Re-price LLM calls of a period with the current price book and contract overrides. Each"
        " changed call gets a correction entry; stored costs are not rewritten."
    )

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="tenant slug")
        target.add_argument("--all-tenants", action="store_true")
        parser.add_argument("--start", required=True, help="first day (UTC), YYYY-MM-DD")
        parser.add_argument("--end", required=True, help="day after the last (UTC), YYYY-MM-DD")
        parser.add_argument("--reason", required=True, help="why, e.g. 'gpt-4.1 price fix'")
        parser.add_argument("--dry-run", action="store_true", help="report, change nothing")

    def handle(self, *args, **options) -> None:
        start, end = _day(options["start"]), _day(options["end"])
        if end <= start:
            raise CommandError("--end must be after --start.")
        if options["all_tenants"]:
            tenants = list(customer_tenants())
        else:
            tenant = tenant_by_slug(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
            tenants = [tenant]
        refused = []
        for tenant in tenants:
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
