"""``manage.py import_billed FILE``"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.operator.services.billed import BilledImportError, billed_import
from factory_portal.periods import month_text


class Command(BaseCommand):
    help = (
        "Import an AI provider's bill (FOCUS CSV, OpenAI costs CSV/JSON, Anthropic cost report "
        "CSV/JSON) to compare with the portal's estimate; the same file again changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            result = billed_import(path=path)
        except BilledImportError as exc:
            raise CommandError("\n".join([*exc.lines(), "Nothing was imported."])) from exc
        record = result.billed_import
        if not result.created:
            self.stdout.write(f"Already imported on {record.imported_at:%Y-%m-%d %H:%M} UTC.")
            return
        months = ", ".join(month_text(m) for m in result.months)
        self.stdout.write(
            f"Imported {record.rows:,} AI charges ({record.layout}, {record.amount} USD) for "
            f"{months}; {record.skipped:,} other rows skipped."
        )
