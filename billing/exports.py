"""Finance exports of one tenant's month: CSV (charges), XLSX (a sheet per view) and a
FOCUS-shaped CSV, also as the download the reports page and the report API return; and the
operator's cost per customer.

Every export is built from one ``CostReport``; amounts are rounded to the cent so that lines add
up exactly to the totals (largest remainder), hence the exports agree with each other and with
the dashboards. Rows are written as they are produced: CSVs stream, XLSX uses openpyxl's
write-only mode.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import IO, Any

from django.http import FileResponse
from openpyxl import Workbook

from billing.domain.allocation import round_lines
from billing.selectors.costs import CostReport, cost_report
from factory_portal.periods import month_text, next_month
from factory_portal.spreadsheets import cell
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors


class _SafeRows:
    """A csv writer or worksheet whose rows go through ``cell``."""

    def __init__(self, target: Any, method: str) -> None:
        self._write = getattr(target, method)

    def writerow(self, row: list[object]) -> None:
        self._write([cell(value) for value in row])

    append = writerow


CHARGE_COLUMNS = [
    "month",
    "tenant",
    "category",
    "project",
    "item",
    "quantity",
    "unit",
    "amount_usd",
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


def _rounded(items: list[Charge]) -> Iterator[tuple[Charge, Decimal]]:
    return zip(items, round_lines([c.amount for c in items]), strict=True)


def write_csv(report: CostReport, out: IO[str]) -> Decimal:
    """Charges as CSV; returns the total written (the sum of the rounded lines)."""
    writer = _SafeRows(csv.writer(out), "writerow")
    writer.writerow(CHARGE_COLUMNS)
    total = Decimal(0)
    month = month_text(report.period)
    for charge, amount in _rounded(charges(report)):
        writer.writerow(
            [
                month,
                report.tenant.slug,
                charge.category,
                charge.project,
                charge.item,
                charge.quantity,
                charge.unit,
                amount,
            ]
        )
        total += amount
    return total


FOCUS_COLUMNS = [
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeDescription",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ServiceName",
    "ServiceCategory",
    "ResourceId",
    "ResourceName",
    "ConsumedQuantity",
    "ConsumedUnit",
    "Tags",
    "AllocatedMethodId",
    "AllocatedMethodDetails",
]


def write_focus(report: CostReport, out: IO[str]) -> Decimal:
    """The month's charges as FOCUS rows (cost columns in cents, allocation details in the
    spirit of FOCUS 1.3's allocation columns)."""
    writer = _SafeRows(csv.writer(out), "writerow")
    writer.writerow(FOCUS_COLUMNS)
    start = f"{report.period:%Y-%m-%d}T00:00:00Z"
    end = f"{next_month(report.period):%Y-%m-%d}T00:00:00Z"
    total = Decimal(0)
    for charge, amount in _rounded(charges(report)):
        ai = charge.category == "AI"
        writer.writerow(
            [
                report.tenant.slug,
                report.tenant.name,
                "USD",
                start,
                end,
                start,
                end,
                "Usage",
                f"{charge.category}: {charge.item}",
                amount,
                amount,
                amount,
                str(charge.details.get("provider", "Factory Portal")) if ai else "Factory Portal",
                "Factory Portal",
                "Factory Portal",
                "AI model usage" if ai else charge.item,
                "AI and Machine Learning" if ai else charge.details["service_category"],
                charge.project,
                charge.project,
                charge.quantity,
                charge.unit,
                json.dumps({"project": charge.project, **({"model": charge.item} if ai else {})}),
                "" if ai else charge.details["method"],
                ""
                if ai
                else json.dumps(
                    {k: v for k, v in charge.details.items() if k not in ("service_category",)}
                ),
            ]
        )
        total += amount
    return total


def _sheet(book: Workbook, title: str) -> _SafeRows:
    return _SafeRows(book.create_sheet(title), "append")


def write_xlsx(report: CostReport, out: IO[bytes]) -> None:
    """One workbook, a sheet per view; every sheet's amounts add up to the summary's."""
    book = Workbook(write_only=True)
    items = charges(report)
    rounded = list(_rounded(items))
    total = sum((amount for _, amount in rounded), Decimal(0))
    ai_total = sum((a for c, a in rounded if c.category == "AI"), Decimal(0))

    summary = _sheet(book, "Summary")
    summary.append(["Tenant", report.tenant.name])
    summary.append(["Month", month_text(report.period)])
    summary.append(["Allocation", report.allocation_status])
    summary.append(["AI cost (USD)", ai_total])
    summary.append(["Infrastructure cost (USD)", total - ai_total])
    summary.append(["Total (USD)", total])
    for name, amount in report.waste.items():
        summary.append([f"Waste: {name.replace('_', ' ')} (USD)", round_lines([amount])[0]])

    projects = _sheet(book, "Projects")
    projects.append(["project", "ai_usd", "infrastructure_usd", "total_usd"])
    per_project: dict[str, list[Decimal]] = {}
    for charge, amount in rounded:
        column = 0 if charge.category == "AI" else 1
        per_project.setdefault(charge.project, [Decimal(0), Decimal(0)])[column] += amount
    for project, (ai, infra) in sorted(per_project.items()):
        projects.append([project, ai, infra, ai + infra])

    models = _sheet(book, "Models")
    models.append(["project", "model", "tokens", "calls", "unpriced_calls", "cost_usd"])
    for charge, amount in rounded:
        if charge.category == "AI":
            models.append(
                [
                    charge.project,
                    charge.item,
                    charge.quantity,
                    charge.details["calls"],
                    charge.details["unpriced_calls"],
                    amount,
                ]
            )

    allocation = _sheet(book, "Allocation")
    allocation.append(
        [
            "pool",
            "project",
            "method",
            "driver",
            "driver_quantity",
            "ratio",
            "part",
            "rule",
            "rule_version",
            "corrects_period",
            "amount_usd",
        ]
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
                    Decimal(d["driver_quantity"]),
                    Decimal(d["ratio"]),
                    d["part"],
                    d["rule"],
                    d["rule_version"],
                    d["corrects_period"],
                    amount,
                ]
            )

    runs = _sheet(book, "Runs")
    runs.append(
        [
            "run_id",
            "project",
            "run_type",
            "template",
            "status",
            "ai_usd",
            "infrastructure_usd",
            "total_usd",
        ]
    )
    # Usage outside any run closes the sheet, so that it adds up to the summary's total.
    outside_ai = report.token_cost - sum((r.token_cost for r in report.runs), Decimal(0))
    outside_infra = sum((p.infra_outside_runs for p in report.projects.values()), Decimal(0))
    values = round_lines(
        [v for r in report.runs for v in (r.token_cost, r.infra_cost)] + [outside_ai, outside_infra]
    )
    for index, run in enumerate(report.runs):
        ai, infra = values[2 * index], values[2 * index + 1]
        runs.append(
            [run.run_id, run.project, run.run_type, run.template, run.status, ai, infra, ai + infra]
        )
    runs.append(
        ["(usage outside runs)", "", "", "", "", values[-2], values[-1], values[-2] + values[-1]]
    )
    book.save(out)


def write_customers_csv(
    rows: list[tuple[str, str, Decimal, Decimal]], month: str, out: IO[str]
) -> Decimal:
    """Operator view: cost per customer for a month (tenant slug, name, AI, infrastructure)."""
    writer = _SafeRows(csv.writer(out), "writerow")
    writer.writerow(["month", "tenant", "name", "ai_usd", "infrastructure_usd", "total_usd"])
    amounts = round_lines([value for _, _, ai, infra in rows for value in (ai, infra)])
    total = Decimal(0)
    for index, (slug, name, _, _) in enumerate(rows):
        ai, infra = amounts[2 * index], amounts[2 * index + 1]
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
    """The month's finance report as a download in ``fmt`` (csv, xlsx or focus)."""
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
    )
