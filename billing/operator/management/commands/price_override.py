"""``manage.py price_override --tenant acme (--discount 12.5 | --input 2 --output 8) ...``"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.pricing.overrides import price_override_create, term_start_text
from factory_portal.periods import PeriodError, moment_parse, zone
from factory_portal.tenants.selectors import tenant_by_slug


def _price(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(value)
    except InvalidOperation as exc:
        raise CommandError(f"--{name} must be a decimal number, got {value!r}") from exc
    if not price.is_finite() or price < 0 or price >= PRICE_LIMIT:
        raise CommandError(f"--{name} must be a number from 0 to below {PRICE_LIMIT:,}")
    return price


# The contract term's price columns hold 10 digits before the point.
PRICE_LIMIT = Decimal(10) ** 10


class Command(BaseCommand):
    help = (
        "Add a contract term for a tenant: a discount on book prices, or custom prices (USD per"
        " million tokens) for a provider/model. The most specific term in force applies."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--provider", default="", help="e.g. openai (default: any)")
        parser.add_argument("--model", default="", help="e.g. gpt-4.1 (default: any)")
        parser.add_argument("--discount", help="percent off book prices, 0-100")
        parser.add_argument("--input", help="custom input price per million tokens")
        parser.add_argument("--output", help="custom output price per million tokens")
        parser.add_argument("--cache-read", help="custom cache-read price (default: input)")
        parser.add_argument("--cache-write", help="custom cache-write price (default: input)")
        parser.add_argument(
            "--from",
            dest="start",
            help="YYYY-MM-DD: from the tenant's midnight (its time zone); default: now",
        )
        parser.add_argument("--note", default="")

    def handle(self, *args, **options) -> None:
        tenant = tenant_by_slug(options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        discount = _price(options["discount"], "discount")
        prices = {
            k: _price(options[k], k.replace("_", "-"))
            for k in ("input", "output", "cache_read", "cache_write")
        }
        if (discount is None) == (prices["input"] is None):
            raise CommandError("Give either --discount or custom prices (--input, --output).")
        if discount is not None and discount > 100:
            raise CommandError("--discount is a percentage from 0 to 100.")
        if prices["input"] is not None and prices["output"] is None:
            raise CommandError("Custom prices need --output as well as --input.")
        start = timezone.now()
        if options["start"]:
            try:
                start = moment_parse(options["start"], day_zone=zone(tenant.timezone))
            except PeriodError as exc:
                raise CommandError(f"--from: {exc}") from exc
        try:
            override = price_override_create(
                tenant=tenant,
                provider=options["provider"],
                model=options["model"],
                discount_percent=discount,
                input_per_mtok=prices["input"],
                output_per_mtok=prices["output"],
                cache_read_per_mtok=prices["cache_read"],
                cache_write_per_mtok=prices["cache_write"],
                effective_from=start,
                note=options["note"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"Added {override} from {term_start_text(override)}. Calls already "
            "stored keep their cost until you run manage.py reprice."
        )
