"""Tenant pages of billing: monthly report downloads (finance and admin roles)."""

from __future__ import annotations

import io
import tempfile
from datetime import date

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse

from billing.costs import cost_report
from billing.exports import write_csv, write_focus, write_xlsx
from factory_portal.accounts.models import Role

FORMATS = {
    "csv": ("text/csv", "csv"),
    "focus": ("text/csv", "focus.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
SPOOL_BYTES = 4 * 1024 * 1024  # larger reports go to a temporary file, not memory


@login_required
def report_download(request: HttpRequest, period: str, fmt: str) -> HttpResponse:
    if not request.user.has_role(Role.FINANCE):
        raise PermissionDenied("Reports are for the finance and admin roles.")
    if fmt not in FORMATS:
        raise Http404("Unknown report format")
    try:
        year, month = (int(part) for part in period.split("-"))
        month_start = date(year, month, 1)
    except ValueError as exc:
        raise Http404("No such month") from exc
    tenant = connection.tenant
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
        filename=f"{tenant.slug}-{month_start:%Y-%m}.{extension}",
    )
