"""``manage.py pricebook_refresh``: load prices from the installed genai-prices catalogue."""

from django.core.management.base import BaseCommand

from billing.pricing.book import pricebook_refresh


class Command(BaseCommand):
    help = "Refresh the price book (public schema) from the installed genai-prices catalogue."

    def handle(self, *args, **options) -> None:
        result = pricebook_refresh()
        self.stdout.write(
            f"genai-prices {result.version}: {result.created} new, {result.changed} changed,"
            f" {result.unchanged} unchanged price entries."
        )
