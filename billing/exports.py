"""Finance exports of one tenant's month: CSV (charges), XLSX (a sheet per view) and a
FOCUS-shaped CSV, also as the download the reports page and the report API return; and the
operator's cost per customer.

Every export is built from one ``CostReport`` and one grouped read of the month's calls
(``billing.selectors.ai_charges``); amounts are rounded to the cent so that lines add up exactly
to the totals (largest remainder), and an AI charge's token-kind lines add up exactly to its
rounded amount, hence the exports agree with each other and with the dashboards. Each carries
the report's stable reference (``CostReport.reference``). Calls no price could price are counted
(calls and tokens per model) and never in an amount. Rows are written as they are produced:
CSVs stream, XLSX uses openpyxl's write-only mode (styles, frozen header rows, filters and
column widths included).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import IO, Any

from django.http import FileResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

from billing.domain.allocation import round_lines
from billing.selectors.ai_charges import (
    ALL_KINDS,
    AiBreakdown,
    Key,
    KindLine,
    Unpriced,
    ai_breakdown,
)
from billing.selectors.commitments import MonthDrawdown, month_drawdown
from billing.selectors.costs import CostReport, cost_report
from factory_portal.money import quantize_cents
from factory_portal.periods import local_day_start, month_text, next_month, zone
from factory_portal.spreadsheets import cell, csv_cell
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors
from usage.selectors.partitions import raw_month_check


class _SafeRows:
    """A csv writer or worksheet whose rows go through ``guard`` (``cell``; ``csv_cell`` for a
    CSV file)."""

    def __init__(self, target: Any, method: str, guard: Callable[[object], object] = cell) -> None:
        self._write = getattr(target, method)
        self._guard = guard

    def writerow(self, row: list[object]) -> None:
        guard = self._guard
        self._write([guard(value) for value in row])

    append = writerow


CHARGE_COLUMNS = [
    "report_id",
    "month",
    "tenant",
    "category",
    "project",
    "item",
    "quantity",
    "unit",
    "amount_usd",
    "calls",
    "unpriced_calls",
    "unpriced_tokens",
]


@dataclass(frozen=True)
class Charge:
    category: str  # AI | Infrastructure
    project: str
    item: str  # provider/model, or the cost pool
    quantity: Decimal
    unit: str
    amount: Decimal  # exact; rounded when written
    details: dict[str, object]


def charges(report: CostReport) -> list[Charge]:
    """The month's charges: AI cost per project and model, and allocated infrastructure per
    project and pool (project-level allocation lines, with how they were computed)."""
    period, end = report.period, next_month(report.period)
    items = [
        Charge(
            "AI",
            row.project,
            f"{row.provider}/{row.model}",
            Decimal(row.input_tokens + row.output_tokens),
            "tokens",
            row.cost,
            {
                "provider": row.provider,
                "model": row.model,
                "calls": row.calls,
                "unpriced_calls": row.unpriced_calls,
            },
        )
        for row in usage_selectors.model_costs(start=period, end=end)
    ]
    for line in report.lines:
        if line.level != "project":
            continue
        items.append(
            Charge(
                "Infrastructure",
                line.project,
                line.pool.name,
                line.driver_quantity,
                line.driver,
                line.amount,
                {
                    "pool_id": line.pool_id,
                    "service_category": line.pool.service_category,
                    "charge_category": line.pool.charge_category,
                    "method": line.method,
                    "driver": line.driver,
                    "driver_quantity": str(line.driver_quantity),
                    "ratio": str(line.ratio),
                    "part": line.part,
                    "rule": line.rule.name if line.rule else "default",
                    "rule_version": line.rule_version,
                    "corrects_period": str(line.corrects_period) if line.corrects_period else None,
                },
            )
        )
    return items


def _key(charge: Charge) -> Key:
    return charge.project, str(charge.details["provider"]), str(charge.details["model"])


@dataclass(frozen=True)
class KindAmount:
    """A token-kind line as written: charged and list amounts to the cent."""

    line: KindLine
    billed: Decimal
    list_cost: Decimal

    @property
    def discount(self) -> Decimal:
        return self.list_cost - self.billed


@dataclass(frozen=True)
class Prepared:
    """What every format writes, computed once: the charges rounded to the cent (largest
    remainder over the month), each AI charge split by token kind (the kinds of a charge add up
    exactly to its rounded amount) and the unpriced calls."""

    report: CostReport
    rounded: list[tuple[Charge, Decimal]]
    kinds: list[KindAmount]
    unpriced: dict[Key, Unpriced]

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.rounded), Decimal(0))

    @property
    def ai_total(self) -> Decimal:
        return sum((a for c, a in self.rounded if c.category == "AI"), Decimal(0))

    @property
    def ai_list_total(self) -> Decimal:
        return sum((k.list_cost for k in self.kinds), Decimal(0))

    @property
    def unpriced_calls(self) -> int:
        return sum(u.calls for u in self.unpriced.values())

    @property
    def unpriced_tokens(self) -> int:
        return sum(u.tokens for u in self.unpriced.values())


def prepare(report: CostReport) -> Prepared:
    """Read and round the month's figures (current tenant schema)."""
    items = charges(report)
    rounded = list(zip(items, round_lines([c.amount for c in items]), strict=True))
    ai = ai_breakdown(tenant=report.tenant, period=report.period)
    return Prepared(report, rounded, _kind_amounts(rounded, ai), ai.unpriced)


def _kind_amounts(rounded: list[tuple[Charge, Decimal]], ai: AiBreakdown) -> list[KindAmount]:
    by_key = ai.lines_of()
    split: list[tuple[KindLine, Decimal]] = []
    for charge, amount in rounded:
        if charge.category != "AI":
            continue
        lines = by_key.get(_key(charge), [])
        if not lines:
            if not charge.amount:
                continue  # only unpriced calls: reported as such
            # Not in the raw read (should not happen): one line at the charged amount.
            lines = [KindLine(*_key(charge), ALL_KINDS, "price_book", "", None, None, None)]
            lines[0].billed = lines[0].list_cost = charge.amount
        exact = [line.billed for line in lines]
        # The rounded charge is the truth: its kinds take up its rounding, on the largest.
        largest = max(range(len(exact)), key=lambda i: abs(exact[i]))
        exact[largest] += amount - sum(exact, Decimal(0))
        split += zip(lines, round_lines(exact), strict=True)
    discounts = round_lines([line.list_cost - line.billed for line, _ in split])
    return [
        KindAmount(line, billed, billed + discount)
        for (line, billed), discount in zip(split, discounts, strict=True)
    ]


def write_csv(report: CostReport, out: IO[str]) -> Decimal:
    """Charges as CSV; returns the total written (the sum of the rounded lines). AI lines count
    their calls and the calls (and tokens) no price could price, which are not in the amount."""
    data = prepare(report)
    writer = _SafeRows(csv.writer(out), "writerow", csv_cell)
    writer.writerow(CHARGE_COLUMNS)
    month = month_text(report.period)
    for charge, amount in data.rounded:
        ai = charge.category == "AI"
        unpriced = data.unpriced.get(_key(charge)) if ai else None
        writer.writerow(
            [
                report.reference,
                month,
                report.tenant.slug,
                charge.category,
                charge.project,
                charge.item,
                charge.quantity,
                charge.unit,
                amount,
                charge.details["calls"] if ai else "",
                charge.details["unpriced_calls"] if ai else "",
                (unpriced.tokens if unpriced else 0) if ai else "",
            ]
        )
    return data.total


# FOCUS 1.2 column names (checked against the specification's list in the tests), plus the two
# allocation columns of FOCUS 1.3 and its ContractApplied (commitment drawdown rows).
FOCUS_COLUMNS = [
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "InvoiceId",
    "BilledCost",
    "EffectiveCost",
    "ContractedCost",
    "ListCost",
    "ContractedUnitPrice",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "SkuPriceId",
    "ResourceId",
    "ResourceName",
    "ConsumedQuantity",
    "ConsumedUnit",
    "Tags",
    "AllocatedMethodId",
    "AllocatedMethodDetails",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ContractApplied",
]
PORTAL = "Factory Portal"
MTOK = Decimal(1_000_000)
KIND_TEXT = {
    "input": "input tokens (uncached)",
    "output": "output tokens",
    "cache_read": "cache read tokens",
    "cache_write": "cache write tokens",
    ALL_KINDS: "all tokens, cost supplied by the client",
}


def _focus_ai(kind: KindAmount) -> dict[str, object]:
    line = kind.line
    item = f"{line.provider}/{line.model}"
    tags: dict[str, object] = {"project": line.project, "model": item, "x_token_kind": line.kind}
    if line.override_ref is not None:
        tags["x_contract_term"] = line.override_ref
    if line.cost_source == "client":
        tags["x_cost_source"] = "client"
    priced = line.kind != ALL_KINDS
    return {
        "ChargeDescription": f"AI: {item} {KIND_TEXT[line.kind]}",
        "BilledCost": kind.billed,
        "ListCost": kind.list_cost,
        "ContractedUnitPrice": line.contracted_unit_price if priced else None,
        "ListUnitPrice": line.list_unit_price if priced else None,
        "PricingCategory": "Standard" if priced else "Other",
        "PricingQuantity": Decimal(line.tokens) / MTOK if priced else None,
        "PricingUnit": "1000000 Tokens" if priced else None,
        "ProviderName": line.provider,
        "ServiceName": "AI model usage",
        "ServiceCategory": "AI and Machine Learning",
        "SkuId": item,
        "SkuPriceId": line.sku_price_id,
        "ResourceId": line.project,
        "ConsumedQuantity": line.tokens,
        "ConsumedUnit": "Tokens",
        "Tags": tags,
    }


def _focus_unpriced(key: Key, unpriced: Unpriced) -> dict[str, object]:
    project, provider, model = key
    item = f"{provider}/{model}"
    return {
        "ChargeDescription": (
            f"AI: {item} unpriced: {unpriced.calls} calls, {unpriced.tokens} tokens with no"
            " price; not in any cost or total"
        ),
        "BilledCost": Decimal("0.00"),
        "ListCost": Decimal("0.00"),
        "ProviderName": provider,
        "ServiceName": "AI model usage",
        "ServiceCategory": "AI and Machine Learning",
        "SkuId": item,
        "ResourceId": project,
        "ConsumedQuantity": unpriced.tokens,
        "ConsumedUnit": "Tokens",
        "Tags": {
            "project": project,
            "model": item,
            "x_unpriced_calls": unpriced.calls,
            "x_unpriced_tokens": unpriced.tokens,
        },
    }


# FOCUS's charge categories: a pool's own (a credit or an adjustment in the bill it came from)
# is kept; anything else is usage.
FOCUS_CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")


def _focus_infrastructure(charge: Charge, amount: Decimal) -> dict[str, object]:
    """A project's share of a cost pool. Its ChargeCategory is the pool's (a credit stays a
    credit); a line that corrects a closed month is ChargeClass "Correction", as FOCUS requires
    of a correction to a billing period already invoiced (a review found both always "Usage"
    and empty)."""
    category = str(charge.details.get("charge_category") or "Usage")
    return {
        "ChargeCategory": category if category in FOCUS_CHARGE_CATEGORIES else "Usage",
        "ChargeClass": "Correction" if charge.details.get("corrects_period") else None,
        "ChargeDescription": f"Infrastructure: {charge.item}",
        "BilledCost": amount,
        "ListCost": amount,
        "ProviderName": PORTAL,
        "ServiceName": charge.item,
        "ServiceCategory": charge.details["service_category"],
        "ResourceId": charge.project,
        "ConsumedQuantity": charge.quantity,
        "ConsumedUnit": charge.unit,
        "Tags": {"project": charge.project},
        "AllocatedMethodId": charge.details["method"],
        "AllocatedMethodDetails": {
            k: v
            for k, v in charge.details.items()
            if k not in ("service_category", "charge_category")
        },
    }


COMMITMENT_TYPES = {"commitment": "Prepaid commitment", "credit": "Credit"}


def _focus_drawdown(drawn: MonthDrawdown, status: str, amount: Decimal) -> dict[str, object]:
    """A commitment's drawdown line of the month: what the month's covered charges took from it
    (``Used``), or the amount left when it ended in the month (``Unused``). It costs nothing
    here (BilledCost = EffectiveCost = ListCost = 0): the charges it covered are the usage and
    infrastructure rows, at their cost, so every total stays what it was; the line says how
    much of them the prepaid amount paid. Quantities are in the commitment's currency."""
    c = drawn.commitment
    return {
        "ChargeDescription": f"Prepaid: {c.name} ({status.lower()})",
        "BilledCost": Decimal("0.00"),
        "ListCost": Decimal("0.00"),
        "ProviderName": PORTAL,
        "ServiceName": "Prepaid commitment",
        "ServiceCategory": "Other",
        "ResourceId": c.reference,
        "CommitmentDiscountCategory": "Spend",
        "CommitmentDiscountId": c.reference,
        "CommitmentDiscountName": c.name,
        "CommitmentDiscountQuantity": amount,
        "CommitmentDiscountStatus": status,
        "CommitmentDiscountType": COMMITMENT_TYPES.get(c.kind, c.kind),
        "CommitmentDiscountUnit": c.currency,
        "ContractApplied": {
            "ContractCommitmentId": c.reference,
            "ContractCommitmentAppliedCost": str(amount),
            "ContractCommitmentAppliedQuantity": str(amount),
            "ContractCommitmentAppliedUnit": c.currency,
        }
        if status == "Used"
        else None,
        "Tags": {"x_commitment_covers": c.covers, "x_commitment_amount": str(c.amount)},
    }


def drawdown_rows(report: CostReport) -> list[dict[str, object]]:
    """The month's commitment drawdown lines (see ``_focus_drawdown``), to the cent."""
    rows = []
    for drawn in month_drawdown(tenant=report.tenant, month=report.period):
        if drawn.used > 0:
            rows.append(_focus_drawdown(drawn, "Used", quantize_cents(drawn.used)))
        if drawn.unused is not None and drawn.unused > 0:
            rows.append(_focus_drawdown(drawn, "Unused", quantize_cents(drawn.unused)))
    return rows


def write_focus(report: CostReport, out: IO[str]) -> Decimal:
    """The month's charges as FOCUS rows; returns the total of BilledCost.

    AI cost is one row per project, model and token kind (and price): ``ListCost`` at the price
    book's prices, ``BilledCost`` = ``EffectiveCost`` = ``ContractedCost`` after the tenant's
    contract terms (what the portal charges), so ListCost - BilledCost is the contract discount.
    Calls that could not be priced are rows of zero cost that say so. Infrastructure rows carry
    their allocation in the spirit of FOCUS 1.3's allocation columns. Prepaid commitments add
    their drawdown lines of the month at no cost (``drawdown_rows``), so the totals are those
    of the other formats."""
    data = prepare(report)
    writer = csv.writer(out)
    writer.writerow(FOCUS_COLUMNS)
    # The tenant's month (its time zone), as FOCUS writes times: UTC with a Z.
    tz = zone(report.tenant.timezone)
    start = f"{local_day_start(report.period, tz):%Y-%m-%dT%H:%M:%SZ}"
    end = f"{local_day_start(next_month(report.period), tz):%Y-%m-%dT%H:%M:%SZ}"
    common: dict[str, object] = {
        "BillingAccountId": report.tenant.slug,
        "BillingAccountName": report.tenant.name,
        "BillingCurrency": "USD",
        "BillingPeriodStart": start,
        "BillingPeriodEnd": end,
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "InvoiceId": report.reference,
        "PublisherName": PORTAL,
        "InvoiceIssuerName": PORTAL,
    }
    rows = [_focus_ai(kind) for kind in data.kinds]
    rows += [_focus_unpriced(key, u) for key, u in sorted(data.unpriced.items())]
    rows += [
        _focus_infrastructure(charge, amount)
        for charge, amount in data.rounded
        if charge.category == "Infrastructure"
    ]
    rows += drawdown_rows(report)
    for row in rows:
        values = {**common, **row}
        values["EffectiveCost"] = values["ContractedCost"] = values["BilledCost"]
        values["ResourceName"] = values["ResourceId"]
        writer.writerow([_focus_cell(values.get(column)) for column in FOCUS_COLUMNS])
    return data.total


def _focus_cell(value: object) -> object:
    """A FOCUS value as written: an amount as a plain number (a negative one too: through
    ``cell`` it was the text "'-8.06", which a FOCUS reader does not take for a number), any
    text through ``csv_cell`` (client ids and names are never trusted as formulas)."""
    if isinstance(value, Decimal):
        return _plain(value)
    return csv_cell(_focus_value(value))


def _focus_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return _plain(value)
    return value


def _plain(value: Decimal) -> str:
    """A decimal without exponent, trailing zeros cut to the cent: ``2.5E-7`` -> ``0.00000025``."""
    text = f"{value:f}"
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(2, "0")
        text = f"{whole}.{fraction}"
    return text


# Excel

USD_FORMAT = '"$"#,##0.00;-"$"#,##0.00'
PRICE_FORMAT = '"$"#,##0.00####'  # unit prices per million tokens
INTEGER_FORMAT = "#,##0"
FORMATS_BY_KIND = {"usd": USD_FORMAT, "price": PRICE_FORMAT, "int": INTEGER_FORMAT}


@dataclass(frozen=True)
class Column:
    name: str
    width: int
    kind: str = ""  # usd | price | int | "" (as is)


class _Table:
    """A write-only worksheet with a frozen header row, an autofilter over its rows, column
    widths and number formats on money and counts. Rows stream to disk as they are appended."""

    def __init__(self, book: Workbook, title: str, columns: list[Column]) -> None:
        self._sheet = book.create_sheet(title)
        self._columns = columns
        # Write-only sheets take views and widths before the first row, the filter at the end.
        self._sheet.freeze_panes = "A2"
        for index, column in enumerate(columns, start=1):
            self._sheet.column_dimensions[get_column_letter(index)].width = column.width
        self._sheet.append([cell(c.name) for c in columns])
        self._rows = 1
        # One styled cell per format, whose style the cells of a column share: assigning
        # number_format to every cell costs more than writing the row.
        self._styles = [
            _formatted(self._sheet, 0, c.kind)._style if c.kind else None  # type: ignore[union-attr]
            for c in columns
        ]

    def append(self, row: list[object]) -> None:
        values: list[object] = []
        for value, style in zip(row, self._styles, strict=True):
            value = cell(value)
            if style is not None and value is not None and value != "":
                styled = WriteOnlyCell(self._sheet, value=value)
                styled._style = style
                value = styled
            values.append(value)
        self._sheet.append(values)
        self._rows += 1

    def close(self) -> None:
        last = get_column_letter(len(self._columns))
        self._sheet.auto_filter.ref = f"A1:{last}{self._rows}"


def _formatted(sheet: Any, value: object, kind: str) -> object:
    value = cell(value)
    if not kind or value is None or value == "":
        return value
    formatted = WriteOnlyCell(sheet, value=value)
    formatted.number_format = FORMATS_BY_KIND[kind]
    return formatted


def _summary(book: Workbook, data: Prepared) -> None:
    report = data.report
    sheet = book.create_sheet("Summary")
    sheet.column_dimensions["A"].width = 44
    sheet.column_dimensions["B"].width = 40
    rows: list[tuple[str, object, str]] = [
        ("Reference", report.reference, ""),
        ("Tenant", report.tenant.name, ""),
        ("Month", month_text(report.period), ""),
        ("Allocation", report.allocation_status, ""),
        ("AI cost (USD)", data.ai_total, "usd"),
        ("AI cost at list prices (USD)", data.ai_list_total, "usd"),
        ("Contract discount on AI (USD)", data.ai_list_total - data.ai_total, "usd"),
        ("Infrastructure cost (USD)", data.total - data.ai_total, "usd"),
        ("Total (USD)", data.total, "usd"),
        ("Unpriced calls (not in any total)", data.unpriced_calls, "int"),
        ("Unpriced tokens (not in any total)", data.unpriced_tokens, "int"),
    ]
    rows += [
        (f"Waste: {name.replace('_', ' ')} (USD)", round_lines([amount])[0], "usd")
        for name, amount in report.waste.items()
    ]
    for label, value, kind in rows:
        sheet.append([cell(label), _formatted(sheet, value, kind)])


def write_xlsx(report: CostReport, out: IO[bytes]) -> None:
    """One workbook, a sheet per view; every sheet's amounts add up to the summary's."""
    data = prepare(report)
    rounded = data.rounded
    book = Workbook(write_only=True)
    _summary(book, data)

    projects = _Table(
        book,
        "Projects",
        [
            Column("project", 24),
            Column("ai_usd", 14, "usd"),
            Column("infrastructure_usd", 18, "usd"),
            Column("total_usd", 14, "usd"),
        ],
    )
    per_project: dict[str, list[Decimal]] = {}
    for charge, amount in rounded:
        column = 0 if charge.category == "AI" else 1
        per_project.setdefault(charge.project, [Decimal(0), Decimal(0)])[column] += amount
    for project, (ai, infra) in sorted(per_project.items()):
        projects.append([project, ai, infra, ai + infra])
    projects.close()

    models = _Table(
        book,
        "Models",
        [
            Column("project", 24),
            Column("model", 36),
            Column("tokens", 16, "int"),
            Column("calls", 12, "int"),
            Column("unpriced_calls", 15, "int"),
            Column("unpriced_tokens", 16, "int"),
            Column("cost_usd", 14, "usd"),
        ],
    )
    for charge, amount in rounded:
        if charge.category == "AI":
            unpriced = data.unpriced.get(_key(charge))
            models.append(
                [
                    charge.project,
                    charge.item,
                    charge.quantity,
                    charge.details["calls"],
                    charge.details["unpriced_calls"],
                    unpriced.tokens if unpriced else 0,
                    amount,
                ]
            )
    models.close()

    kinds = _Table(
        book,
        "Token kinds",
        [
            Column("project", 24),
            Column("model", 36),
            Column("token_kind", 12),
            Column("cost_source", 12),
            Column("tokens", 16, "int"),
            Column("list_price_per_mtok", 18, "price"),
            Column("contracted_price_per_mtok", 24, "price"),
            Column("list_usd", 14, "usd"),
            Column("discount_usd", 14, "usd"),
            Column("cost_usd", 14, "usd"),
            Column("price_entry", 16),
            Column("contract_term", 14),
        ],
    )
    for kind in data.kinds:
        line = kind.line
        kinds.append(
            [
                line.project,
                f"{line.provider}/{line.model}",
                line.kind,
                line.cost_source,
                line.tokens,
                line.list_unit_price,
                line.contracted_unit_price,
                kind.list_cost,
                kind.discount,
                kind.billed,
                line.sku_price_id,
                line.override_ref,
            ]
        )
    kinds.close()

    allocation = _Table(
        book,
        "Allocation",
        [
            Column("pool", 24),
            Column("project", 24),
            Column("method", 12),
            Column("driver", 14),
            Column("driver_quantity", 16),
            Column("ratio", 12),
            Column("part", 10),
            Column("rule", 18),
            Column("rule_version", 12),
            Column("corrects_period", 16),
            Column("amount_usd", 14, "usd"),
        ],
    )
    for charge, amount in rounded:
        if charge.category == "Infrastructure":
            d = charge.details
            allocation.append(
                [
                    charge.item,
                    charge.project,
                    d["method"],
                    d["driver"],
                    Decimal(str(d["driver_quantity"])),
                    Decimal(str(d["ratio"])),
                    d["part"],
                    d["rule"],
                    d["rule_version"],
                    d["corrects_period"],
                    amount,
                ]
            )
    allocation.close()

    runs = _Table(
        book,
        "Runs",
        [
            Column("run_id", 28),
            Column("project", 24),
            Column("run_type", 16),
            Column("template", 24),
            Column("status", 12),
            Column("ai_usd", 14, "usd"),
            Column("infrastructure_usd", 18, "usd"),
            Column("total_usd", 14, "usd"),
        ],
    )
    # Usage outside any run closes the sheet, so that it adds up to the summary's total; the
    # rounding is the costs page's, so its per-template rows are sums of these rows.
    per_run, outside_ai, outside_infra = report.in_cents()
    for run, (ai, infra) in zip(report.runs, per_run, strict=True):
        runs.append(
            [run.run_id, run.project, run.run_type, run.template, run.status, ai, infra, ai + infra]
        )
    runs.append(
        [
            "(usage outside runs)",
            "",
            "",
            "",
            "",
            outside_ai,
            outside_infra,
            outside_ai + outside_infra,
        ]
    )
    runs.close()
    book.save(out)


def write_customers_csv(
    rows: list[tuple[str, str, Decimal, Decimal]], month: str, out: IO[str]
) -> Decimal:
    """Operator view: cost per customer for a month (tenant slug, name, AI, infrastructure);
    answers the sum of the rows. Each customer's figures are rounded to the cent on their own,
    as that customer's pages, API and reports show them: rounding the table as one pool (largest
    remainder) kept its sum at the rounded total but moved a cent from one customer to another
    (a review found one customer's AI a cent above its own figure everywhere else)."""
    writer = _SafeRows(csv.writer(out), "writerow", csv_cell)
    writer.writerow(["month", "tenant", "name", "ai_usd", "infrastructure_usd", "total_usd"])
    total = Decimal(0)
    for slug, name, exact_ai, exact_infra in rows:
        ai, infra = quantize_cents(exact_ai), quantize_cents(exact_infra)
        writer.writerow([month, slug, name, ai, infra, ai + infra])
        total += ai + infra
    return total


FORMATS = {
    "csv": ("text/csv", "csv"),
    "focus": ("text/csv", "focus.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
SPOOL_BYTES = 4 * 1024 * 1024  # larger reports go to a temporary file, not memory


def report_file(tenant: Tenant, month_start: date, fmt: str) -> FileResponse:
    """The month's finance report as a download in ``fmt`` (csv, xlsx or focus). Refused
    (``RawEventsExpired``) for a month whose raw calls are past the tenant's retention: the
    files split each call's cost by token kind; the month's totals stay in ``cost_report``."""
    raw_month_check(tenant=tenant, month=month_start)
    report = cost_report(tenant=tenant, period=month_start)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - FileResponse closes it
    if fmt == "xlsx":
        write_xlsx(report, spool)
    else:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
        (write_csv if fmt == "csv" else write_focus)(report, text)
        text.detach()
    spool.seek(0)
    content_type, extension = FORMATS[fmt]
    return FileResponse(
        spool,
        as_attachment=True,
        content_type=content_type,
        filename=f"{tenant.slug}-{month_text(month_start)}.{extension}",
        headers={"X-Report-Reference": report.reference},
    )
