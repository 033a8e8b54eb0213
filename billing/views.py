"""Tenant pages of billing: the monthly reports index and the report downloads (finance and
admin roles)."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.costs import cost_report
from billing.exports import write_csv, write_focus, write_xlsx
from factory_portal.accounts.permissions import role_required
from factory_portal.periods import PeriodError, month_parse, month_text, months_ending
from factory_portal.tenants.models import Tenant

REPORT_FORMAT_LABELS = [
    ("csv", "CSV"),
    ("xlsx", "Excel (XLSX)"),
    ("focus", "FOCUS CSV"),
]
FORMATS = {
    "csv": ("text/csv", "csv"),
    "focus": ("text/csv", "focus.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
SPOOL_BYTES = 4 * 1024 * 1024  # larger reports go to a temporary file, not memory
REPORT_MONTHS = 12


def recent_months(today: date, count: int = REPORT_MONTHS) -> list[date]:
    """The first days of ``today``'s month and the ``count - 1`` months before it, newest first."""
    return months_ending(today, count)[::-1]


@role_required("costs")
def reports(request: HttpRequest) -> HttpResponse:
    """The last 12 months (in the tenant's timezone) with links to each month's downloads."""
    try:
        tz = ZoneInfo(connection.tenant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    months = recent_months(timezone.now().astimezone(tz).date())
    return render(
        request,
        "billing/reports.html",
        {"months": months, "current": months[0], "formats": REPORT_FORMAT_LABELS},
    )


@role_required("costs")
def report_download(request: HttpRequest, period: str, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404("Unknown report format")
    try:
        month_start = month_parse(period)
    except PeriodError as exc:
        raise Http404(str(exc)) from exc
    return report_file(connection.tenant, month_start, fmt)


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
