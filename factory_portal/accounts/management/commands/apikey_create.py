"""``manage.py apikey_create --tenant acme --scopes ingest,read``: prints the key once."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from factory_portal.accounts.services import api_key_create
from factory_portal.commands import command_error
from factory_portal.tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = (
        "Create an API key for a tenant and print it (it is stored hashed and never shown again)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="tenant slug")
        target.add_argument(
            "--platform",
            action="store_true",
            help="a platform ingest key for the operator host (routes items to their tenants)",
        )
        parser.add_argument("--scopes", default="read", help="comma-separated: ingest,read")
        parser.add_argument("--name", default="CLI key")

    def handle(self, *args: object, **options: Any) -> None:
        if options["platform"]:
            schema, owner = "public", "the platform (operator host)"
        else:
            tenant = tenant_by_slug(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
            schema, owner = tenant.schema_name, tenant.slug
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            with schema_context(schema):
                api_key, raw = api_key_create(name=options["name"], scopes=scopes)
        except ValidationError as exc:
            raise command_error(exc) from exc
        self.stderr.write(
            f"Key {api_key.prefix} for {owner} with scopes {','.join(api_key.scopes)} (shown once):"
        )
        self.stdout.write(raw)
