"""``manage.py tenant_create --slug acme --name "Acme Corp" --admin-email a@acme.test
[--timezone Europe/Berlin]``"""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from factory_portal.accounts.services import password_check
from factory_portal.commands import command_error
from factory_portal.tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant: its schema, its domain <slug>.<PORTAL_BASE_DOMAIN> and an admin user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="lowercase id, e.g. acme")
        parser.add_argument("--name", required=True, help='display name, e.g. "Acme Corp"')
        parser.add_argument("--admin-email", required=True)
        parser.add_argument(
            "--admin-password", help="password for the admin (generated and printed if omitted)"
        )
        parser.add_argument("--currency", default="USD")
        parser.add_argument(
            "--timezone",
            default="UTC",
            help="IANA time zone where the tenant's days and months begin, e.g. Europe/Berlin",
        )

    def handle(self, *args: object, **options: Any) -> None:
        try:
            if options["admin_password"]:  # the password forms' rules
                password_check(options["admin_password"], email=options["admin_email"])
            created = tenant_create(
                slug=options["slug"],
                name=options["name"],
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
                currency=options["currency"],
                timezone=options["timezone"],
            )
        except ValidationError as exc:
            raise command_error(exc) from exc
        primary = created.tenant.get_primary_domain()
        domain = primary.domain if primary else "(no domain)"
        self.stdout.write(self.style.SUCCESS(f"Tenant {created.tenant.slug} created at {domain}"))
        self.stdout.write(f"Admin: {created.admin.email}")
        if not options["admin_password"]:
            self.stdout.write(f"Password (shown once): {created.admin_password}")
