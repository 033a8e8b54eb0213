"""Importing FOCUS cost-and-usage files into cost pools (public schema).

Streams the CSV row by row (memory grows with the number of pools, not of rows), validates every
row (the first 100 bad ones are listed, the rest counted), and writes the file record and its
pools in one transaction: a bad row anywhere means nothing is imported. A file whose content was
imported before changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.db import transaction

from billing.operator.models import CostPool, FocusImport
from factory_portal.error_lists import ErrorList
from usage.domain.focus import FocusRowError, charge_parse, focus_version, missing_columns

PROGRESS_EVERY = 10_000
MAX_AMOUNT = Decimal(10) ** 18  # the cost columns hold 18 digits before the decimal point
PoolKey = tuple[date, str, str, str, str, str]  # period, provider, service, charge, tag, currency


class FocusImportError(Exception):
    """Why a file was refused; ``rows`` lists the first bad rows and counts them all."""

    def __init__(self, message: str, rows: ErrorList[FocusRowError] | None = None) -> None:
        super().__init__(message)
        self.rows: ErrorList[FocusRowError] = rows or ErrorList()

    def lines(self) -> list[str]:
        """The message, then (for several bad rows) one line per listed row and the rest."""
        if self.rows.total < 2:
            return [str(self)]
        more = [f"and {self.rows.omitted:,} more rows"] if self.rows.omitted else []
        return [str(self), *map(str, self.rows.listed), *more]


@dataclass
class PoolTotals:
    billed_cost: Decimal = Decimal(0)
    effective_cost: Decimal = Decimal(0)
    list_cost: Decimal = Decimal(0)
    rows: int = 0


@dataclass
class FocusImportResult:
    focus_import: FocusImport
    created: bool
    pools: int = 0
    rows_by_period: dict[date, int] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def focus_import(
    *,
    path: Path,
    period: date | None = None,
    pool_tag: str = "",
    progress: Callable[[int, int, int], None] = lambda rows, done, total: None,
    filename: str = "",
) -> FocusImportResult:
    """Import ``path``. ``period`` (first of a month) puts every charge in that billing period;
    without it each row's BillingPeriodStart decides. ``pool_tag`` splits pools by that tag's
    value. ``progress(rows, bytes_read, bytes_total)`` is called every 10,000 rows. The record
    keeps ``filename`` (default: the file's own name)."""
    digest = file_sha256(path)
    existing = FocusImport.objects.filter(sha256=digest).first()
    if existing is not None:
        _same_options(existing, period, pool_tag)
        return FocusImportResult(focus_import=existing, created=False)

    try:
        return _import_new(path, filename or path.name, digest, period, pool_tag, progress)
    except UnicodeDecodeError as exc:
        raise FocusImportError("not a UTF-8 text file: save the bill as a UTF-8 CSV") from exc
    except csv.Error as exc:
        raise FocusImportError(f"not a readable CSV file: {exc}") from exc


def _same_options(existing: FocusImport, period: date | None, pool_tag: str) -> None:
    """A file imported before is a no-op, but not silently with other options: its pools keep
    the billing period and pool tag it was imported with (an operator review found a wrong
    --period impossible to see, and to mend, this way)."""
    pools = CostPool.objects.filter(source=existing)
    tags = set(pools.values_list("tag_key", flat=True))
    months = set(pools.values_list("period", flat=True))
    when = f"{existing.filename} was imported on {existing.imported_at:%Y-%m-%d}"
    if tags and tags != {pool_tag[:100]}:
        earlier = next(iter(tags)) or "none"
        raise FocusImportError(
            f"{when} with pool tag {earlier!r}; importing it again with pool tag "
            f"{pool_tag or 'none'!r} changes nothing (its pools stand as they are)"
        )
    if existing.period_given is not None and period is None:
        raise FocusImportError(
            f"{when} into {existing.period_given:%Y-%m} (--period); importing it again without"
            " --period, into its charges' own months, changes nothing (its pools stand as they"
            " are)"
        )
    if period is not None and months and months != {period}:
        earlier_months = ", ".join(sorted(m.strftime("%Y-%m") for m in months))
        raise FocusImportError(
            f"{when} into {earlier_months}; importing it again into {period:%Y-%m} changes "
            "nothing (its pools stand as they are)"
        )


def _import_new(
    path: Path,
    filename: str,
    digest: str,
    period: date | None,
    pool_tag: str,
    progress: Callable[[int, int, int], None],
) -> FocusImportResult:
    total_bytes = path.stat().st_size
    pools: dict[PoolKey, PoolTotals] = {}
    rows_by_period: dict[date, int] = {}
    file_totals = PoolTotals()
    bad_rows: ErrorList[FocusRowError] = ErrorList()
    # Binary underneath: the text layer cannot tell its position while a reader iterates it
    # (the 10,000th row's progress failed), the bytes read so far can.
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = missing_columns(columns)
        if missing:
            raise FocusImportError(f"not a FOCUS file: missing column(s) {', '.join(missing)}")
        version = focus_version(columns)
        for number, row in enumerate(reader, start=2):
            try:
                charge = charge_parse(row, number, with_tags=bool(pool_tag))
            except FocusRowError as exc:
                bad_rows.add(exc)  # keep reading: the operator sees every problem at once
                continue
            charge_period = period or charge.period
            tag_value = str(charge.tags.get(pool_tag, "")) if pool_tag else ""
            # Cut to what a pool keeps before grouping: two names alike up to the cut are one
            # pool (cut after, they were two pools with one key, and the import failed).
            key = (
                charge_period,
                charge.provider[:100],
                charge.service_category[:100],
                charge.charge_category[:32],
                tag_value[:200],
                charge.currency,
            )
            for totals in (pools.setdefault(key, PoolTotals()), file_totals):
                totals.billed_cost += charge.billed_cost
                totals.effective_cost += charge.effective_cost
                totals.list_cost += charge.list_cost
                totals.rows += 1
            rows_by_period[charge_period] = rows_by_period.get(charge_period, 0) + 1
            if file_totals.rows % PROGRESS_EVERY == 0:
                progress(file_totals.rows, raw.tell(), total_bytes)
    progress(file_totals.rows, total_bytes, total_bytes)
    if bad_rows.total == 1:
        raise FocusImportError(str(bad_rows.listed[0]), bad_rows)
    if bad_rows:
        raise FocusImportError(f"{bad_rows.total:,} rows are invalid", bad_rows)
    if not file_totals.rows:
        raise FocusImportError("the file has a FOCUS header but no charges")
    largest = max(
        max(abs(t.billed_cost), abs(t.effective_cost), abs(t.list_cost))
        for t in (file_totals, *pools.values())
    )
    if largest >= MAX_AMOUNT:
        raise FocusImportError("a cost total is too large to be a real bill (10^18 or more)")

    with transaction.atomic():
        record = FocusImport.objects.create(
            sha256=digest,
            filename=filename[:300],
            focus_version=version,
            rows=file_totals.rows,
            billed_cost=file_totals.billed_cost,
            effective_cost=file_totals.effective_cost,
            list_cost=file_totals.list_cost,
            period_given=period,
        )
        CostPool.objects.bulk_create(
            [
                CostPool(
                    period=key[0],
                    provider=key[1][:100],
                    service_category=key[2][:100],
                    charge_category=key[3][:32],
                    tag_key=pool_tag[:100],
                    tag_value=key[4][:200],
                    currency=key[5],
                    name=_pool_name(key, pool_tag)[:300],
                    billed_cost=t.billed_cost,
                    effective_cost=t.effective_cost,
                    list_cost=t.list_cost,
                    rows=t.rows,
                    source=record,
                )
                for key, t in sorted(pools.items())
            ]
        )
    return FocusImportResult(
        focus_import=record, created=True, pools=len(pools), rows_by_period=rows_by_period
    )


def focus_upload_import(
    *, chunks: Iterable[bytes], filename: str, period: date | None = None, pool_tag: str = ""
) -> FocusImportResult:
    """Import an uploaded FOCUS file: its chunks are written to a temporary file (removed
    afterwards); the import record keeps the upload's base name. The client's name never names
    a file here (one of 255 characters but more bytes would be refused by the file system)."""
    name = Path(filename.replace("\\", "/").replace("\x00", "")).name.strip()[-200:]
    if name in ("", ".", ".."):
        name = "upload.csv"
    with tempfile.NamedTemporaryFile(prefix="focus-upload-", suffix=".csv") as handle:
        for chunk in chunks:
            handle.write(chunk)
        handle.flush()
        return focus_import(path=Path(handle.name), period=period, pool_tag=pool_tag, filename=name)


def _pool_name(key: PoolKey, pool_tag: str) -> str:
    _, provider, service, charge, tag_value, _ = key
    name = f"{provider} {service} ({charge})"
    return f"{name} {pool_tag}={tag_value}" if pool_tag and tag_value else name
