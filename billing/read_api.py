"""``GET /api/v1/forecast`` and ``GET /api/v1/reports/monthly`` (scope ``read``)."""

from __future__ import annotations

from datetime import date

from django.db import connection
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.costs import cost_report
from billing.models import CostForecast
from billing.views import FORMATS, report_file
from factory_portal.accounts.authentication import CanRead
from usage.selectors import project_slugs

LEVELS = (80, 95)
MAX_HORIZON = 90


class ForecastQuerySerializer(serializers.Serializer):
    project = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="empty: the tenant"
    )
    horizon = serializers.IntegerField(min_value=1, max_value=MAX_HORIZON, default=30)
    levels = serializers.CharField(required=False, default="80,95", help_text="80 and/or 95")

    def validate_levels(self, value: str) -> list[int]:
        try:
            levels = sorted({int(v) for v in value.split(",") if v.strip()})
        except ValueError as exc:
            raise serializers.ValidationError("Levels are 80 and/or 95, comma-separated.") from exc
        if not levels or any(level not in LEVELS for level in levels):
            raise serializers.ValidationError("Levels are 80 and/or 95, comma-separated.")
        return levels

    def validate_project(self, value: str) -> str:
        if value and value not in project_slugs():
            raise serializers.ValidationError(f"No project {value!r} in this tenant.")
        return value


def _interval(values: dict[str, str], levels: list[int]) -> dict[str, str]:
    out = {"mean": values["mean"]}
    for level in levels:
        out[f"lo{level}"] = values[f"lo{level}"]
        out[f"hi{level}"] = values[f"hi{level}"]
    return out


class ForecastApi(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        operation_id="forecast",
        summary="Forecast of daily AI cost with intervals, for the tenant or a project",
        parameters=[ForecastQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        form = ForecastQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        project, horizon, levels = (
            form.validated_data[k] for k in ("project", "horizon", "levels")
        )
        forecast = CostForecast.objects.filter(project=project).first()
        if forecast is None:
            raise NotFound(
                "No forecast yet for this scope: forecasts need a day of usage and are refreshed"
                " every 6 hours."
            )
        columns = {"mean": 1, "lo80": 2, "hi80": 3, "lo95": 4, "hi95": 5}
        days = []
        for row in forecast.daily[:horizon]:
            values = {name: row[index] for name, index in columns.items()}
            days.append({"day": row[0], **_interval(values, levels)})
        return Response(
            {
                "scope": "project" if project else "tenant",
                "project": project or None,
                "computed_at": forecast.computed_at.isoformat().replace("+00:00", "Z"),
                "method": forecast.method,
                "horizon_days": len(days),
                "levels": levels,
                "days": days,
                "month_end": _interval(forecast.month_end, levels),
                "next_30_days": _interval(forecast.next_30, levels),
                "next_90_days": _interval(forecast.next_90, levels),
            }
        )


class ReportQuerySerializer(serializers.Serializer):
    month = serializers.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$", help_text="YYYY-MM")
    format = serializers.ChoiceField(choices=["json", *FORMATS], default="json")

    def validate_month(self, value: str) -> str:
        if not 2000 <= int(value[:4]) <= 2100:
            raise serializers.ValidationError("The year must be between 2000 and 2100.")
        return value


class FormatIsOurs(DefaultContentNegotiation):
    """``?format=`` names the report's format here, not a DRF renderer: answer JSON (the files
    are returned as plain Django responses)."""

    def select_renderer(self, request, renderers, format_suffix=None):  # type: ignore[no-untyped-def]
        return renderers[0], renderers[0].media_type


class MonthlyReportApi(APIView):
    permission_classes = [CanRead]
    content_negotiation_class = FormatIsOurs

    @extend_schema(
        operation_id="report_monthly",
        summary="The finance report of a month: JSON, CSV, XLSX or FOCUS-shaped CSV",
        parameters=[ReportQuerySerializer],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="JSON, or the file for the other formats"
            )
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        form = ReportQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        year, month = (int(p) for p in form.validated_data["month"].split("-"))
        period = date(year, month, 1)
        fmt = form.validated_data["format"]
        tenant = connection.tenant
        if fmt != "json":
            return report_file(tenant, period, fmt)
        report = cost_report(tenant=tenant, period=period)
        return Response(
            {
                "month": f"{period:%Y-%m}",
                "allocation_status": report.allocation_status,
                "currency": "USD",
                "token_cost": f"{report.token_cost:.10f}",
                "infrastructure_cost": f"{report.infra_cost:.2f}",
                "total": f"{report.total:.10f}",
                "runs": len(report.runs),
                "projects": [
                    {
                        "project": name,
                        "token_cost": f"{p.token_cost:.10f}",
                        "infrastructure_cost": f"{p.infra_cost:.2f}",
                        "infrastructure_outside_runs": f"{p.infra_outside_runs:.2f}",
                        "total": f"{p.total:.10f}",
                    }
                    for name, p in sorted(report.projects.items())
                ],
                "allocation_lines": [
                    {
                        "pool": line.pool.name,
                        "level": line.level,
                        "project": line.project,
                        "method": line.method,
                        "driver": line.driver,
                        "driver_quantity": None
                        if line.driver_quantity is None
                        else str(line.driver_quantity),
                        "ratio": None if line.ratio is None else str(line.ratio),
                        "part": line.part,
                        "amount": f"{line.amount:.2f}",
                    }
                    for line in report.lines
                ],
            }
        )
