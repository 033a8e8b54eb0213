"""``manage.py portal_setup``: the public tenant for the base domain, and optionally an operator."""

import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from factory_portal.commands import command_error
from factory_portal.tenants.services import operator_ensure, public_tenant_ensure


class Command(BaseCommand):
    help = (
        "Map the bare base domain to the operator console (public schema) and create an operator"
        " user. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--operator-email", help="create this operator if missing")
        parser.add_argument(
            "--operator-password",
            default=os.environ.get("PORTAL_OPERATOR_PASSWORD"),
            help="default: $PORTAL_OPERATOR_PASSWORD, else generated and printed",
        )

    def handle(self, *args: object, **options: Any) -> None:
        public = public_tenant_ensure()
        domain = public.get_primary_domain()
        self.stdout.write(f"Operator console at {domain.domain if domain else '(no domain)'}")
        if options["operator_email"]:
            try:
                user, password = operator_ensure(  # a new operator's password: the forms' rules
                    email=options["operator_email"],
                    password=options["operator_password"],
                    check_password=True,
                )
            except ValidationError as exc:
                raise command_error(exc) from exc
            if password is None:
                self.stdout.write(f"Operator {user.email} already exists.")
            else:
                self.stdout.write(f"Operator {user.email} created.")
                if not options["operator_password"]:
                    self.stdout.write(f"Password (shown once): {password}")
