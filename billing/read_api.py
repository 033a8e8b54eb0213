"""``GET /api/v1/forecast`` and ``GET /api/v1/reports/monthly`` (scope ``read``)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

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
from billing.operator.models import AllocationLine, AllocationRun
from billing.views import FORMATS, report_file
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import MonthField, iso_utc
from factory_portal.periods import day_start, month_text, months_spanning
from usage.read_api import FILTER_PARAMETERS, UsageQuerySerializer
from usage.selectors import aggregates, project_slugs

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
    access = ApiAccess(read=Access(area="costs", scope="read"))

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
                "computed_at": iso_utc(forecast.computed_at),
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
    month = MonthField(help_text="YYYY-MM, 2000-01 to 2100-12")
    format = serializers.ChoiceField(choices=["json", *FORMATS], default="json")


class FormatIsOurs(DefaultContentNegotiation):
    """``?format=`` names the report's format here, not a DRF renderer: answer JSON (the files
    are returned as plain Django responses)."""

    def select_renderer(self, request, renderers, format_suffix=None):  # type: ignore[no-untyped-def]
        return renderers[0], renderers[0].media_type


class MonthlyReportApi(APIView):
    access = ApiAccess(read=Access(area="costs", scope="read"))
    content_negotiation_class = FormatIsOurs

    @extend_schema(
        operation_id="report_monthly",
        summary="The finance report of a month: JSON, CSV, XLSX or FOCUS-shaped CSV",
        parameters=[ReportQuerySerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="format=json: the report"
            ),
            **{
                (200, content_type): OpenApiResponse(
                    OpenApiTypes.BINARY, description=f"format={fmt}: the file"
                )
                for fmt, (content_type, _) in FORMATS.items()
            },
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        form = ReportQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        period = form.validated_data["month"]
        fmt = form.validated_data["format"]
        tenant = connection.tenant
        if fmt != "json":
            return report_file(tenant, period, fmt)
        report = cost_report(tenant=tenant, period=period)
        return Response(
            {
                "month": month_text(period),
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


ZERO = Decimal(0)
COST_DIMENSIONS = ("project", "provider", "model", "operation", "run_type", "template")


class CostQuerySerializer(UsageQuerySerializer):
    details = serializers.BooleanField(
        required=False, default=False, help_text="include each allocation line"
    )

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        details = attrs.pop("details", False)
        query = super().validate(attrs)
        unknown = [d for d in query.group_by if d not in COST_DIMENSIONS]
        unknown += [d for d in query.filters if d not in COST_DIMENSIONS]
        if unknown:
            raise serializers.ValidationError(
                {"group_by": f"Costs are not split by {', '.join(sorted(set(unknown)))}."}
            )
        return query, details


def _infrastructure_by_month(months: list[date]) -> dict[tuple[date, str], list[AllocationLine]]:
    """The tenant's project-level allocation lines per (month, project), from each month's
    allocation run (the same lines the cost report and the exports use)."""
    tenant = connection.tenant
    lines: dict[tuple[date, str], list[AllocationLine]] = {}
    for month in months:
        run = AllocationRun.objects.filter(period=month).first()
        if run is None:
            continue
        for line in (
            AllocationLine.objects.filter(run=run, tenant=tenant, level="project")
            .select_related("pool")
            .order_by("project", "pool_id", "part")
        ):
            lines.setdefault((month, line.project), []).append(line)
    return lines


def _months(query: aggregates.UsageQuery) -> list[date]:
    """First days of the months that ``[start, end)`` touches."""
    last = query.end - timedelta(microseconds=1)
    return months_spanning(query.start.date(), last.date())


def _line_json(line: AllocationLine) -> dict[str, object]:
    return {
        "pool": line.pool.name,
        "method": line.method,
        "driver": line.driver,
        "driver_quantity": None if line.driver_quantity is None else str(line.driver_quantity),
        "ratio": None if line.ratio is None else str(line.ratio),
        "part": line.part,
        "amount": f"{line.amount:.2f}",
    }


class CostsApi(APIView):
    """``GET /api/v1/costs`` (scope ``read``): AI cost per period and dimension from the rollups;
    with ``granularity=month`` and no grouping other than ``project``, also the allocated
    infrastructure and the total (allocation is monthly, per project)."""

    access = ApiAccess(read=Access(area="costs", scope="read"))

    @extend_schema(
        operation_id="costs",
        summary="AI cost, allocated infrastructure and total per period",
        parameters=[CostQuerySerializer, *FILTER_PARAMETERS],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        form = CostQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        query, details = form.validated_data
        rows = aggregates.token_usage(query)
        monthly = (
            query.granularity == "month"
            and set(query.group_by) <= {"project"}
            and set(query.filters) <= {"project"}
        )
        grouped = "project" in query.group_by
        wanted = query.filters.get("project")
        # (month, project or None when not grouped) -> the allocation lines of that row
        infra: dict[tuple[date, str | None], list[AllocationLine]] = {}
        if monthly:
            for (month, project), group in _infrastructure_by_month(_months(query)).items():
                if wanted is None or project in wanted:
                    infra.setdefault((month, project if grouped else None), []).extend(group)
            present = {(row["period_start"].date(), row.get("project")) for row in rows}
            for month, project in infra.keys() - present:  # allocation without AI cost
                extra = {"period_start": day_start(month)}
                rows.append({**extra, **({"project": project} if grouped else {}), "cost": ZERO})
            rows.sort(key=lambda r: (r["period_start"], r.get("project") or ""))
        out = []
        for row in rows:
            item: dict[str, object] = {"period_start": iso_utc(row["period_start"])}
            item.update({d: row[d] for d in query.group_by})
            item["token_cost"] = f"{row['cost']:.10f}"
            item["infrastructure_cost"] = item["total"] = None
            if monthly:
                lines = infra.get((row["period_start"].date(), row.get("project")), [])
                allocated = sum((line.amount for line in lines), ZERO)
                item["infrastructure_cost"] = f"{allocated:.2f}"
                item["total"] = f"{row['cost'] + allocated:.10f}"
                if details:
                    item["allocation"] = [_line_json(line) for line in lines]
            out.append(item)
        return Response(
            {
                "start": iso_utc(query.start),
                "end": iso_utc(query.end),
                "granularity": query.granularity,
                "group_by": list(query.group_by),
                "currency": "USD",
                "infrastructure": "allocated per month and project: given with granularity=month"
                " and no grouping other than project",
                "results": out,
            }
        )
