"""The tenant's billing API (``/api/v1``): budgets (read: keys with ``read``, users who may see
the budgets page, finance and admin; create, change and delete: keys with ``manage``, admins),
the cost forecast, the monthly finance report, costs per period and prepaid commitments (scope
``read``); run budgets (as budgets) and a run's guard (``runs`` area, scope ``read``). Amounts
are decimal strings.

Views parse the query, call one selector or service and serialize; budgets are written only
through ``billing.services``. The operator's API is ``billing.operator.api``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services
from billing.domain.forecasting import ForecastDay
from billing.exports import FORMATS, report_file
from billing.models import Budget, RunBudget
from billing.operator.models import AllocationLine, Commitment
from billing.selectors.commitments import CommitmentStatus, commitments_status_now
from billing.selectors.costs import cost_report, project_allocation_lines
from billing.selectors.guard import GuardAnswer, run_guard
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import BoundedListField, EnumField, MonthField, iso_utc, problem_response
from factory_portal.money import percent, quantize_cents
from factory_portal.pagination import CursorPage, PageQuerySerializer, cursor_page_schema
from factory_portal.periods import (
    local_date,
    local_day_start,
    month_text,
    months_spanning,
    next_month,
)
from factory_portal.tenants.connection import connection_zone
from usage.domain.limits import TEMPLATE_LENGTH
from usage.selectors import aggregates, model_costs, project_slugs
from usage.selectors.partitions import RawEventsExpired
from usage.selectors.query_params import FILTER_PARAMETERS, UsageQuerySerializer

# Budgets


class BudgetSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), coerce_to_string=True
    )
    thresholds = BoundedListField(
        child=serializers.IntegerField(min_value=1, max_value=1000),
        min_length=1,
        max_length=20,
        required=False,
    )

    class Meta:
        model = Budget
        fields = ["id", "project", "amount", "basis", "thresholds", "created_at"]
        read_only_fields = ["id", "created_at"]
        # One scope, one budget: ``validate`` says so in words (the model's unique check would
        # answer "budget with this project already exists." for a changed scope only).
        extra_kwargs = {"project": {"validators": []}}

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        project = attrs.get("project", self.instance.project if self.instance else "")
        clash = Budget.objects.filter(project=project)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            scope = f"project {project!r}" if project else "the tenant"
            raise serializers.ValidationError({"project": f"{scope} already has a budget."})
        return attrs


def _saved(save: Callable[[], Budget]) -> Budget:
    """The budget ``save`` stores; the service's refusal as a 400 on ``detail``."""
    try:
        return save()
    except ValidationError as exc:
        raise serializers.ValidationError({"detail": exc.messages}) from exc


BUDGET_ACCESS = ApiAccess(
    read=Access(area="budgets", scope="read"), write=Access(area="admin", scope="manage")
)


class BudgetListApi(generics.ListCreateAPIView):
    access = BUDGET_ACCESS
    serializer_class = BudgetSerializer
    queryset = Budget.objects.order_by("project")

    def perform_create(self, serializer: BudgetSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = _saved(
            lambda: services.budget_set(
                amount=data["amount"],
                project=data.get("project", ""),
                thresholds=data.get("thresholds"),
                basis=data.get("basis", Budget.Basis.AI),
            )
        )


class BudgetDetailApi(generics.RetrieveUpdateDestroyAPIView):
    access = BUDGET_ACCESS
    serializer_class = BudgetSerializer
    queryset = Budget.objects.all()

    def perform_update(self, serializer: BudgetSerializer) -> None:
        budget, data = serializer.instance, serializer.validated_data
        serializer.instance = _saved(
            lambda: services.budget_change(
                budget=budget,
                amount=data.get("amount", budget.amount),
                project=data.get("project", budget.project),
                thresholds=data.get("thresholds", budget.thresholds),
                basis=data.get("basis", budget.basis),
            )
        )

    def perform_destroy(self, instance: Budget) -> None:
        services.budget_delete(budget=instance)


# Forecast

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


def _day_values(row: ForecastDay) -> dict[str, str]:
    names = ("mean", "lo80", "hi80", "lo95", "hi95")
    return {name: str(getattr(row, name)) for name in names}


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
        # Computed here when missing (bounded: one series), so a new tenant need not wait.
        today = local_date(timezone.now(), connection_zone())
        forecast = services.forecast_ensure(today=today, project=project)
        if forecast is None:
            raise NotFound(
                "No forecast yet for this scope: forecasts need a complete day of usage (before"
                " today, in the workspace's time zone)."
            )
        days = [
            {"day": str(row.day), **_interval(_day_values(row), levels)}
            for row in forecast.days[:horizon]
        ]
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


# Monthly report


class ReportQuerySerializer(serializers.Serializer):
    month = MonthField(help_text="YYYY-MM, 2000-01 to 2100-12")
    format = EnumField(choices=["json", *FORMATS], default="json")


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
            try:
                return report_file(tenant, period, fmt)
            except RawEventsExpired as exc:  # the JSON report (ledger, rollups) is still served
                return problem_response(status=410, title="Raw events gone", detail=str(exc))
        report = cost_report(tenant=tenant, period=period)
        unpriced = [
            row for row in model_costs(start=period, end=next_month(period)) if row.unpriced_calls
        ]
        return Response(
            {
                "reference": report.reference,
                "month": month_text(period),
                "allocation_status": report.allocation_status,
                "currency": "USD",
                "token_cost": f"{report.token_cost:.10f}",
                "infrastructure_cost": f"{report.infra_cost:.2f}",
                "total": f"{report.total:.10f}",
                "runs": len(report.runs),
                # Calls no price could price: in no amount of the report.
                "unpriced": [
                    {
                        "project": row.project,
                        "provider": row.provider,
                        "model": row.model,
                        "calls": row.unpriced_calls,
                    }
                    for row in unpriced
                ],
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


# Costs

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


def _whole_months(query: aggregates.UsageQuery, zone: ZoneInfo) -> list[date]:
    """First days of the tenant's months that lie wholly inside ``[start, end)``: only those
    carry allocated infrastructure (allocation is monthly and no month is prorated, as on the
    costs page; a month the period only touches has its AI cost alone)."""
    last = query.end - timedelta(microseconds=1)
    return [
        month
        for month in months_spanning(local_date(query.start, zone), local_date(last, zone))
        if local_day_start(month, zone) >= query.start
        and local_day_start(next_month(month), zone) <= query.end
    ]


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
        zone = connection_zone()
        # (month, project or None when not grouped) -> the allocation lines of that row
        infra: dict[tuple[date, str | None], list[AllocationLine]] = {}
        whole = _whole_months(query, zone) if monthly else []
        if monthly:
            for (month, project), group in project_allocation_lines(
                tenant=connection.tenant, months=whole
            ).items():
                if wanted is None or project in wanted:
                    infra.setdefault((month, project if grouped else None), []).extend(group)
            present = {(local_date(row["period_start"], zone), row.get("project")) for row in rows}
            for month, project in infra.keys() - present:  # allocation without AI cost
                extra = {"period_start": local_day_start(month, zone)}
                rows.append({**extra, **({"project": project} if grouped else {}), "cost": ZERO})
            rows.sort(key=lambda r: (r["period_start"], r.get("project") or ""))
        out = []
        for row in rows:
            item: dict[str, object] = {"period_start": iso_utc(row["period_start"])}
            item.update({d: row[d] for d in query.group_by})
            item["token_cost"] = f"{row['cost']:.10f}"
            item["infrastructure_cost"] = item["total"] = None
            if monthly and local_date(row["period_start"], zone) in whole:
                key = (local_date(row["period_start"], zone), row.get("project"))
                lines = infra.get(key, [])
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
                " and no grouping other than project, for the months wholly inside the period"
                " (null for a month the period only touches: no month is prorated)",
                "results": out,
            }
        )


# Prepaid commitments


class CommitmentExhaustionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    forecast = serializers.BooleanField(
        help_text="false: nothing to forecast with (no cost forecast yet, or infrastructure only)"
    )
    expected = serializers.DateField(
        allow_null=True, help_text="by the forecast's mean; null: not before the end"
    )
    earliest = serializers.DateField(allow_null=True, help_text="80% interval: high-spend path")
    latest = serializers.DateField(
        allow_null=True, help_text="80% interval: low-spend path; null: not before the end"
    )


class BurndownDaySerializer(serializers.Serializer):  # type: ignore[type-arg]
    day = serializers.DateField()
    drawn = serializers.DecimalField(max_digits=20, decimal_places=2)
    remaining = serializers.DecimalField(max_digits=20, decimal_places=2)


class CommitmentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField(help_text="as in the FOCUS export's CommitmentDiscountId")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Commitment.Kind.choices)
    covers = serializers.ChoiceField(choices=Commitment.Covers.choices)
    currency = serializers.CharField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    start_date = serializers.DateField()
    last_day = serializers.DateField(help_text="included (the end, or the day it was ended)")
    state = serializers.ChoiceField(choices=["upcoming", "active", "exhausted", "ended"])
    consumed = serializers.DecimalField(max_digits=14, decimal_places=2)
    remaining = serializers.DecimalField(max_digits=14, decimal_places=2)
    consumed_percent = serializers.DecimalField(max_digits=7, decimal_places=2)
    exhaustion = CommitmentExhaustionSerializer()
    burndown = BurndownDaySerializer(many=True, help_text="each day it drew on, to date")


def commitment_figures(status: CommitmentStatus) -> dict[str, object]:
    c, ends = status.commitment, status.exhaustion
    return {
        "id": c.reference,
        "name": c.name,
        "kind": c.kind,
        "covers": c.covers,
        "currency": c.currency,
        "amount": c.amount,
        "start_date": c.start_date,
        "last_day": c.last_day,
        "state": status.state,
        "consumed": status.consumed,
        "remaining": status.remaining,
        "consumed_percent": percent(status.drawdown.consumed, c.amount, 2),
        "exhaustion": {
            "forecast": ends.forecast,
            "expected": ends.expected,
            "earliest": ends.earliest,
            "latest": ends.latest,
        },
        "burndown": [
            {
                "day": d.day,
                "drawn": quantize_cents(d.drawn),
                "remaining": quantize_cents(d.remaining),
            }
            for d in status.drawdown.days
        ],
    }


class CommitmentListApi(APIView):
    """``GET /api/v1/commitments``: the tenant's prepaid commitments and credits (read-only; the
    operator records them), soonest ending first, in cursor pages."""

    access = ApiAccess(read=Access(area="costs", scope="read"))

    @extend_schema(
        operation_id="commitments_list",
        summary="Prepaid commitments and credits: consumed, remaining, forecast exhaustion",
        parameters=[PageQuerySerializer],
        responses={
            200: cursor_page_schema("PaginatedCommitmentList", CommitmentSerializer(many=True))
        },
    )
    def get(self, request: Request) -> Response:
        tenant = connection.tenant
        pages = CursorPage()
        page = pages.paginate_queryset(
            Commitment.objects.filter(tenant=tenant).order_by("end_date", "pk"), request, self
        )
        # Drawdown depends on every commitment (their order): computed for all, shown per page.
        statuses = {
            s.commitment.pk: s for s in commitments_status_now(tenant=tenant, now=timezone.now())
        }
        rows = [commitment_figures(statuses[c.pk]) for c in page or [] if c.pk in statuses]
        return pages.get_paginated_response(CommitmentSerializer(rows, many=True).data)


# Run budgets and the run guard


class RunBudgetSerializer(serializers.ModelSerializer):
    project = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="empty: any"
    )
    template = serializers.CharField(
        max_length=TEMPLATE_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="empty: any",
    )
    basis = EnumField(choices=RunBudget.Basis.values, default=RunBudget.Basis.AMOUNT)
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        allow_null=True,
        coerce_to_string=True,
        help_text="USD per run (basis amount)",
    )
    multiple = serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(100),
        required=False,
        allow_null=True,
        coerce_to_string=True,
        help_text="times the run's P90 AI quote (basis p90_multiple)",
    )
    warn_percent = serializers.IntegerField(min_value=1, max_value=100, default=80)

    class Meta:
        model = RunBudget
        fields = [
            "id",
            "project",
            "template",
            "basis",
            "amount",
            "multiple",
            "warn_percent",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        validators: list[object] = []  # the scope's uniqueness is the service's, in words


def _run_budget_saved(serializer: RunBudgetSerializer, budget: RunBudget | None) -> RunBudget:
    data = serializer.validated_data

    def value(name: str, default: object) -> object:
        if name in data:
            return data[name]
        return getattr(budget, name) if budget is not None else default

    basis = str(value("basis", RunBudget.Basis.AMOUNT))
    # A basis change drops the other basis's figure unless it is given again.
    kept = budget if budget is not None and basis == budget.basis else None
    amount = data.get("amount", kept.amount if kept else None)
    multiple = data.get("multiple", kept.multiple if kept else None)
    try:
        return services.run_budget_set(
            project=str(value("project", "")),
            template=str(value("template", "")),
            basis=basis,
            amount=amount,
            multiple=multiple,
            warn_percent=int(str(value("warn_percent", 80))),
            budget=budget,
        )
    except ValidationError as exc:
        raise serializers.ValidationError(_field_errors(exc)) from exc


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """The service's refusals by the field they name (their code), as DRF reports a field's
    errors; one without a field under ``non_field_errors``."""
    fields = set(RunBudgetSerializer().fields)
    errors: dict[str, list[str]] = {}
    for error in exc.error_list:
        field = error.code if error.code in fields else "non_field_errors"
        message = error.message % error.params if error.params else error.message
        errors.setdefault(field, []).append(str(message))
    return errors


RUN_BUDGET_ACCESS = ApiAccess(
    read=Access(area="budgets", scope="read"), write=Access(area="admin", scope="manage")
)


class RunBudgetListApi(generics.ListCreateAPIView):
    """``GET/POST /api/v1/run-budgets``: limits per run of a project and/or template."""

    access = RUN_BUDGET_ACCESS
    serializer_class = RunBudgetSerializer
    queryset = RunBudget.objects.order_by("project", "template", "id")

    @extend_schema(operation_id="run_budgets_list", summary="Run budgets")
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="run_budgets_create", summary="Create a run budget")
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().post(request, *args, **kwargs)

    def perform_create(self, serializer: RunBudgetSerializer) -> None:  # type: ignore[override]
        serializer.instance = _run_budget_saved(serializer, None)


@extend_schema_view(
    get=extend_schema(operation_id="run_budget", summary="A run budget"),
    patch=extend_schema(operation_id="run_budget_change", summary="Change a run budget"),
    delete=extend_schema(operation_id="run_budget_delete", summary="Delete a run budget"),
)
class RunBudgetDetailApi(generics.RetrieveUpdateDestroyAPIView):
    """``GET/PATCH/DELETE /api/v1/run-budgets/{id}``."""

    access = RUN_BUDGET_ACCESS
    serializer_class = RunBudgetSerializer
    queryset = RunBudget.objects.all()
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_update(self, serializer: RunBudgetSerializer) -> None:  # type: ignore[override]
        serializer.instance = _run_budget_saved(serializer, serializer.instance)

    def perform_destroy(self, instance: RunBudget) -> None:
        services.run_budget_delete(budget=instance)


def _cents(amount: Decimal | None) -> str | None:
    return None if amount is None else str(quantize_cents(amount))


def guard_json(answer: GuardAnswer) -> dict[str, object]:
    """The guard answer's JSON (the API's and the run page's figures): amounts in USD cents."""
    ev = answer.evaluation
    return {
        "run_id": answer.run_id,
        "state": ev.state,
        "finished": answer.finished,
        "cost_so_far": _cents(ev.cost_so_far),
        "expected_remaining": _cents(ev.expected_remaining),
        "projected_total": _cents(ev.projected_total),
        "limit": _cents(ev.limit),
        "limit_basis": answer.limit_basis,
        "warn_percent": answer.budget.warn_percent if answer.budget else None,
        "budget_id": answer.budget.pk if answer.budget else None,
        "quote": (
            {"p90": _cents(answer.quote.p90), "runs": answer.quote.runs} if answer.quote else None
        ),
        "updated_at": iso_utc(answer.computed_at),
    }


class _QuoteOut(serializers.Serializer):
    p90 = serializers.CharField(help_text="P90 AI cost of comparable finished runs, USD")
    runs = serializers.IntegerField(help_text="how many comparable runs")


class RunGuardOut(serializers.Serializer):
    """The answer's shape (for the schema); amounts are USD strings with cents."""

    run_id = serializers.CharField()
    state = serializers.ChoiceField(choices=["ok", "warn", "stop"])
    finished = serializers.BooleanField(help_text="final figures: nothing remains expected")
    cost_so_far = serializers.CharField()
    expected_remaining = serializers.CharField()
    projected_total = serializers.CharField()
    limit = serializers.CharField(allow_null=True, help_text="null: no run budget applies")
    limit_basis = serializers.ChoiceField(choices=RunBudget.Basis.values, allow_null=True)
    warn_percent = serializers.IntegerField(allow_null=True)
    budget_id = serializers.IntegerField(allow_null=True)
    quote = _QuoteOut(allow_null=True, help_text="for a limit on the P90 quote")
    updated_at = serializers.DateTimeField(help_text="when the figures were computed")


class RunGuardApi(APIView):
    """``GET /api/v1/runs/{run_id}/guard`` (scope ``read``)."""

    access = ApiAccess(read=Access(area="runs", scope="read"))

    @extend_schema(
        operation_id="run_guard",
        summary="A run's projected total against its run budget: ok, warn or stop",
        parameters=[
            OpenApiParameter(
                "run_id",
                str,
                OpenApiParameter.PATH,
                description="The run id as one percent-encoded path segment ('/' is %2F).",
            )
        ],
        responses={200: RunGuardOut},
    )
    def get(self, request: Request, run_id: str) -> Response:
        answer = run_guard(run_id)
        if answer is None:
            raise NotFound(f"No run {run_id[:200]!r} in this tenant.")
        return Response(guard_json(answer))
