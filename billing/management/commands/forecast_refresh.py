"""``manage.py forecast_refresh [--tenant SLUG_OR_SCHEMA] [--project SLUG]``"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.services import forecast_refresh
from factory_portal.tenants.selectors import customer_tenants
from usage import selectors as usage_selectors


class Command(BaseCommand):
    help = (
        "Recompute and store the cost forecasts (history up to yesterday, 90 days ahead) of every"
        " tenant, or of one tenant and optionally one of its projects, and print the method"
        " chosen, the month-end figure and how long each took."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="a tenant's slug or schema name (default: all)")
        parser.add_argument("--project", help="only this project (default: tenant and projects)")

    def handle(self, *args, **options) -> None:
        tenants = list(customer_tenants())
        if options["tenant"]:
            name = options["tenant"]
            tenants = list(customer_tenants().filter(Q(slug=name) | Q(schema_name=name)))
            if not tenants:
                raise CommandError(f"No tenant with slug or schema {name!r}.")
        today = timezone.now().date()
        stored = 0
        for tenant in tenants:
            with schema_context(tenant.schema_name):
                projects = usage_selectors.project_slugs()
                project = options["project"]
                if project is not None and project not in projects:
                    if len(tenants) == 1:
                        raise CommandError(f"No project {project!r} in tenant {tenant.slug!r}.")
                    continue
                for scope in [project] if project is not None else ["", *projects]:
                    stored += self._one(tenant.slug, scope, today)
        self.stdout.write(f"{stored} forecast(s) stored for {len(tenants)} tenant(s).")

    def _one(self, tenant: str, project: str, today) -> int:  # type: ignore[no-untyped-def]
        label = f"{tenant}/{project}" if project else f"{tenant} (all projects)"
        started = time.perf_counter()
        result = forecast_refresh(today=today, project=project)
        seconds = time.perf_counter() - started
        if result is None:
            self.stdout.write(f"{label}: no usage before {today}, nothing stored")
            return 0
        month = result.month_end
        self.stdout.write(
            f"{label}: {result.method}, rest of month ${month['mean']}"
            f" (80%: ${month['lo80']} to ${month['hi80']}), {seconds:.2f} s"
        )
        return 1
