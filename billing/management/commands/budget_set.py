"""``manage.py budget_set --tenant acme [--project p] --amount 500 [--thresholds 50,80,100]``"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.selectors.budgets import budget_status
from billing.services import budget_set
from factory_portal.commands import command_error
from factory_portal.periods import local_date, zone
from factory_portal.tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = "Set the monthly budget of a tenant or one of its projects, and show its status."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--project", default="")
        parser.add_argument("--amount", required=True, help="USD per month")
        parser.add_argument("--thresholds", default="50,80,100", help="percentages")
        parser.add_argument(
            "--basis",
            default="ai",
            choices=["ai", "total"],
            help="ai: AI cost; total: AI plus allocated infrastructure",
        )

    def handle(self, *args, **options) -> None:
        tenant = tenant_by_slug(options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        try:
            amount = Decimal(options["amount"])
            thresholds = [int(t) for t in options["thresholds"].split(",") if t.strip()]
        except (InvalidOperation, ValueError) as exc:
            raise CommandError("--amount is a number; --thresholds are whole percentages") from exc
        with schema_context(tenant.schema_name):
            try:
                budget = budget_set(
                    amount=amount,
                    project=options["project"],
                    thresholds=thresholds,
                    basis=options["basis"],
                )
            except ValidationError as exc:
                raise command_error(exc) from exc
            today = local_date(timezone.now(), zone(tenant.timezone))
            status = budget_status(budget, tenant=tenant, today=today)
        self.stdout.write(
            f"{tenant.slug} {budget}: spent {status.spent:,.2f} this month, status {status.status}"
        )
