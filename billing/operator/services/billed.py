"""Importing AI providers' bills, raising drift alerts and truing a month up to the bill.

Import: the file is read whole before anything is written (the first 100 bad rows are listed,
the rest counted); its charges, summed per provider, model and UTC day, are written with the
import record in one transaction, so a bad row anywhere means nothing is imported. A file whose
content (SHA-256) was imported before changes nothing. Files above
``BILLED_IMPORT_MAX_BYTES`` are refused before they are read.

Alerts: ``billed_drift_check`` records one ``BilledDriftAlert`` per month, provider and model
outside tolerance and sends ``billing.signals.billed_drift_exceeded`` for each new one (billing
does not import alerts; ``alerts`` notifies the operators).

True-up: the month's difference per provider and model, rounded to the cent once, is split over
tenants by their share of the estimate (largest remainder): the lines sum to it exactly.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.domain.allocation import UNALLOCATED
from billing.domain.billed import (
    CSV_READERS,
    FORMAT_NAMES,
    MAX_AMOUNT,
    BilledFileError,
    BilledRow,
    BilledRowError,
    Key,
    Skipped,
    csv_rows,
    json_rows,
    trueup_split,
)
from billing.operator import billed_selectors
from billing.operator.models import (
    BilledCost,
    BilledDriftAlert,
    BilledImport,
    TrueUp,
    TrueUpLine,
)
from billing.signals import billed_drift_exceeded
from factory_portal.error_lists import ErrorList
from factory_portal.periods import month_of
from factory_portal.tenants.selectors import customer_tenants


class BilledImportError(Exception):
    """Why a bill was refused; ``rows`` lists the first bad rows and counts them all."""

    def __init__(
        self,
        message: str,
        rows: ErrorList[BilledRowError] | None = None,
        *,
        too_large: bool = False,
    ) -> None:
        super().__init__(message)
        self.rows: ErrorList[BilledRowError] = rows or ErrorList()
        self.too_large = too_large

    def lines(self) -> list[str]:
        if self.rows.total < 2:
            return [str(self)]
        more = [f"and {self.rows.omitted:,} more rows"] if self.rows.omitted else []
        return [str(self), *map(str, self.rows.listed), *more]


@dataclass
class BilledImportResult:
    billed_import: BilledImport
    created: bool
    months: list[date]


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_json(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


def _parse(path: Path) -> tuple[str, dict[Key, Decimal], dict[Key, int], int]:
    """The file's layout, its AI usage charges summed per key, their row counts, rows skipped."""
    if _is_json(path):
        layout, rows = json_rows(path.read_text(encoding="utf-8-sig"))
        return layout, *_read(layout, iter(rows))
    with path.open(newline="", encoding="utf-8-sig") as handle:
        layout, csv_iter = csv_rows(handle)
        return layout, *_read(layout, csv_iter)


def billed_import(*, path: Path, filename: str = "") -> BilledImportResult:
    """Import the bill at ``path`` (FOCUS CSV, OpenAI costs CSV/JSON or Anthropic cost report
    CSV/JSON, recognised by its columns or fields), then check the drift of the months it
    covers. The record keeps ``filename`` (default: the file's own name)."""
    size = path.stat().st_size
    if size > settings.BILLED_IMPORT_MAX_BYTES:
        raise BilledImportError(
            f"the file has {size:,} bytes; at most {settings.BILLED_IMPORT_MAX_BYTES:,} are "
            "accepted: split it by month",
            too_large=True,
        )
    digest = _digest(path)
    existing = BilledImport.objects.filter(sha256=digest).first()
    if existing is not None:
        return BilledImportResult(existing, created=False, months=[])
    try:
        layout, sums, counts, skipped = _parse(path)
    except UnicodeDecodeError as exc:
        raise BilledImportError("not a UTF-8 text file: save the bill as UTF-8") from exc
    except BilledFileError as exc:
        raise BilledImportError(str(exc)) from exc
    except csv.Error as exc:
        raise BilledImportError(f"not a readable CSV file: {exc}") from exc
    if not sums:
        raise BilledImportError(
            f"the {FORMAT_NAMES[layout]} file holds no AI usage charges ({skipped:,} rows of "
            "other services or charge categories)"
        )
    # Each row is below MAX_AMOUNT; their sums must be too, and the file's (a stored amount
    # holds 18 digits before the point: a thousand rows of 999,999,999,999,999 overflowed).
    if max(abs(total) for total in (*sums.values(), sum(sums.values(), Decimal(0)))) >= (
        MAX_AMOUNT
    ):
        raise BilledImportError("a cost total is too large to be a real bill (10^15 or more)")
    days = [key[2] for key in sums]
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = BilledImport.objects.create(
                    sha256=digest,
                    filename=(filename or path.name)[:300],
                    layout=layout,
                    rows=sum(counts.values()),
                    skipped=skipped,
                    amount=sum(sums.values(), Decimal(0)),
                    first_day=min(days),
                    last_day=max(days),
                )
        except IntegrityError:  # imported concurrently
            return BilledImportResult(
                BilledImport.objects.get(sha256=digest), created=False, months=[]
            )
        BilledCost.objects.bulk_create(
            [
                BilledCost(
                    source=record,
                    provider=provider[:64],
                    model=model[:128],
                    day=day,
                    amount=amount,
                    rows=counts[(provider, model, day)],
                )
                for (provider, model, day), amount in sorted(sums.items())
            ],
            batch_size=5000,
        )
    months = sorted({month_of(day) for day in days})
    for month in months:
        billed_drift_check(period=month)
    return BilledImportResult(record, created=True, months=months)


def _read(
    layout: str, rows: Iterator[tuple[str, Mapping[str, object]]]
) -> tuple[dict[Key, Decimal], dict[Key, int], int]:
    reader = CSV_READERS[layout]
    sums: dict[Key, Decimal] = defaultdict(Decimal)
    counts: dict[Key, int] = defaultdict(int)
    skipped = 0
    bad: ErrorList[BilledRowError] = ErrorList()
    for where, row in rows:
        try:
            parsed = reader(row, where)  # type: ignore[arg-type]
        except BilledRowError as exc:
            bad.add(exc)  # keep reading: the operator sees every problem at once
            continue
        if isinstance(parsed, Skipped):
            skipped += 1
            continue
        key = _key(parsed)
        sums[key] += parsed.amount
        counts[key] += 1
    if bad.total == 1:
        raise BilledImportError(str(bad.listed[0]), bad)
    if bad:
        raise BilledImportError(f"{bad.total:,} rows are invalid", bad)
    return dict(sums), dict(counts), skipped


def _key(row: BilledRow) -> Key:
    """Cut to what a stored charge keeps before grouping: two models alike up to the cut are
    one charge (cut after, they were two with one key, and the import failed)."""
    return (row.provider[:64], row.model[:128], row.day)


def billed_upload_import(*, chunks: Iterable[bytes], filename: str) -> BilledImportResult:
    """Import an uploaded bill: its chunks go to a temporary file (removed afterwards), counted
    so that an upload above the limit is refused without being stored whole."""
    name = Path(filename.replace("\\", "/").replace("\x00", "")).name.strip()[-200:]
    if name in ("", ".", ".."):
        name = "bill"
    limit = settings.BILLED_IMPORT_MAX_BYTES
    with tempfile.NamedTemporaryFile(prefix="billed-upload-") as handle:
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise BilledImportError(
                    f"the file has more than {limit:,} bytes, the most accepted: split it by month",
                    too_large=True,
                )
            handle.write(chunk)
        handle.flush()
        return billed_import(path=Path(handle.name), filename=name)


def billed_drift_check(*, period: date) -> list[BilledDriftAlert]:
    """Raise an alert for each provider and model of the month outside the tolerance, once per
    month, provider and model; returns the alerts raised now. Only providers with a bill in the
    month are compared (``Drift.outside``): a provider whose bill is not imported yet is not
    billed nothing."""
    drift = billed_selectors.billed_drift(period)
    raised = []
    for line in drift.outside:
        with transaction.atomic():
            alert, created = BilledDriftAlert.objects.get_or_create(
                period=period,
                provider=line.provider,
                model=line.model,
                defaults={
                    "billed": line.billed,
                    "estimated": line.estimated,
                    "percent": line.percent,
                    "tolerance": drift.tolerance,
                },
            )
            if created:
                billed_drift_exceeded.send(sender=BilledDriftAlert, alert_id=alert.pk)
                raised.append(alert)
    return raised


def month_trueup(*, period: date) -> list[TrueUp]:
    """True the UTC month ``period`` up to the bill: for each provider and model billed in it, a
    correction of (billed - estimated) rounded to the cent, split over the tenants by their share
    of the estimate. A month trued up before has its true-ups replaced."""
    estimates = billed_selectors.estimates_by_tenant(period)
    billed = billed_selectors.billed_costs(period)
    drift = billed_selectors.billed_drift(period)
    billed_models = {(provider, model) for provider, model, _ in billed}
    tenants = {t.slug: t for t in customer_tenants()}
    now = timezone.now()
    made = []
    with transaction.atomic():
        TrueUp.objects.filter(period=period).delete()
        for line in drift.lines:
            if line.key not in billed_models:
                continue  # nothing billed: no bill to true up to
            shares = {
                estimate.tenant.slug: _model_total(estimate.costs, line.key)
                for estimate in estimates
            }
            parts = trueup_split(line.difference, shares)
            trueup = TrueUp.objects.create(
                period=period,
                provider=line.provider,
                model=line.model,
                billed=line.billed,
                estimated=line.estimated,
                amount=sum(parts.values(), Decimal(0)),
                created_at=now,
            )
            TrueUpLine.objects.bulk_create(
                [
                    TrueUpLine(
                        trueup=trueup,
                        tenant=None if slug == UNALLOCATED else tenants[slug],
                        estimated=shares.get(slug, Decimal(0)),
                        amount=amount,
                    )
                    for slug, amount in sorted(parts.items())
                ]
            )
            made.append(trueup)
    return made


def _model_total(costs: Mapping[Key, Decimal], model: tuple[str, str]) -> Decimal:
    return sum(
        (amount for (provider, name, _), amount in costs.items() if (provider, name) == model),
        Decimal(0),
    )
