"""``manage.py portal_setup``: the public tenant for the base domain, and optionally an operator."""

import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from factory_portal.tenants.services import operator_ensure, public_tenant_ensure


class Command(BaseCommand):
    help = (
        "Map the bare base domain to the operator console (public schema) and create an operator"
        " user. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--operator-email", help="create this operator if missing")
        parser.add_argument(
            "--operator-password",
            default=os.environ.get("PORTAL_OPERATOR_PASSWORD"),
            help="default: $PORTAL_OPERATOR_PASSWORD, else generated and printed",
        )

    def handle(self, *args, **options) -> None:
        public = public_tenant_ensure()
        self.stdout.write(f"Operator console at {public.get_primary_domain().domain}")
        if options["operator_email"]:
            try:
                user, password = operator_ensure(
                    email=options["operator_email"], password=options["operator_password"]
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            if password is None:
                self.stdout.write(f"Operator {user.email} already exists.")
            else:
                self.stdout.write(f"Operator {user.email} created.")
                if not options["operator_password"]:
                    self.stdout.write(f"Password (shown once): {password}")
