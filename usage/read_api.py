"""Usage API views for reading (scope ``read``, or the browser session): ``GET /api/v1/usage``
(aggregated token and infrastructure usage from the rollups), runs in keyset pages and one run in
detail. They call selectors only; nothing here writes or imports the ingest views."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from factory_portal import periods
from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import DayField, EnumField, iso_utc
from factory_portal.money import quantize_cents
from factory_portal.pagination import (
    BAD_CURSOR,
    PageQuerySerializer,
    cursor_page_schema,
    cursor_read,
    page_response,
)
from factory_portal.tenants.connection import connection_zone
from usage import selectors
from usage.domain.limits import FAILURE_TYPE_LENGTH, MODEL_LENGTH, STEP_NAME_LENGTH
from usage.models import RunStatus
from usage.selectors import aggregates, run_trace
from usage.selectors import steps as step_selectors
from usage.selectors.query_params import FILTER_PARAMETERS, UsageQuerySerializer

USAGE_RESPONSE = inline_serializer(
    "UsageResponse",
    {
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(),
        "granularity": serializers.CharField(),
        "group_by": serializers.ListField(child=serializers.CharField()),
        "tokens": serializers.ListField(child=serializers.DictField()),
        "infrastructure": serializers.ListField(child=serializers.DictField()),
    },
)


class UsageApi(APIView):
    access = ApiAccess(read=Access(area="runs", scope="read"))

    @extend_schema(
        summary="Aggregated token and infrastructure usage",
        parameters=[UsageQuerySerializer, *FILTER_PARAMETERS],
        responses={200: USAGE_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        form = UsageQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        query: aggregates.UsageQuery = form.validated_data
        tokens = aggregates.token_usage(query)
        infra = aggregates.infrastructure_usage(query)
        for row in tokens:
            row["cost"] = f"{row['cost']:.10f}"
        for row in infra:
            row["quantity"] = f"{row['quantity']:.6f}"
        written: dict[datetime, str] = {}  # rows share their periods: each written once
        for row in (*tokens, *infra):
            at = row["period_start"]
            text = written.get(at)
            if text is None:
                text = written[at] = iso_utc(at)
            row["period_start"] = text
        return Response(
            {
                "start": iso_utc(query.start),
                "end": iso_utc(query.end),
                "granularity": query.granularity,
                "group_by": list(query.group_by),
                "tokens": tokens,
                "infrastructure": infra,
            }
        )


class RunSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    project = serializers.CharField()
    template = serializers.CharField()
    run_type = serializers.CharField()
    status = serializers.CharField()
    requested_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField(allow_null=True)
    failure_type = serializers.CharField()
    ai_cost = serializers.DecimalField(max_digits=24, decimal_places=10)
    infrastructure_cost = serializers.DecimalField(
        max_digits=24,
        decimal_places=2,
        source="infra_cost",
        help_text="allocated to the run; 0.00 until its month's shared cost is allocated",
    )
    total_cost = serializers.DecimalField(
        max_digits=24, decimal_places=10, help_text="AI cost + infrastructure cost"
    )


class RunQuerySerializer(PageQuerySerializer):
    status = EnumField(choices=RunStatus.values, required=False)
    project = serializers.CharField(required=False, allow_blank=True, max_length=100)
    template = serializers.CharField(required=False, allow_blank=True, max_length=200)
    run_type = serializers.CharField(required=False, allow_blank=True, max_length=64)
    start = DayField(
        required=False, help_text="requested on or after (the tenant's day, its time zone)"
    )
    end = DayField(
        required=False, help_text="requested on or before (the tenant's day, its time zone)"
    )
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=128, help_text="run id or its prefix"
    )
    step = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=STEP_NAME_LENGTH,
        help_text="runs with a job of this step name",
    )
    failure_type = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=FAILURE_TYPE_LENGTH,
        help_text="the run's failure type, or a job's (of `step`, when given)",
    )
    model = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MODEL_LENGTH,
        help_text="runs with an LLM call of this model",
    )
    sort = EnumField(choices=list(selectors.RUN_SORTS), default="newest")

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "start must not be after end."})
        attrs["after"] = None
        if attrs.get("cursor"):
            # Signed by this tenant's list (``cursor_read``); the position is that of ``sort``.
            payload = cursor_read(attrs["cursor"], self.context["request"])
            try:
                attrs["after"] = selectors.cursor_parse(str(payload.get("k")), attrs["sort"])
            except ValueError as exc:
                raise serializers.ValidationError({"cursor": BAD_CURSOR}) from exc
        return attrs


class RunListApi(APIView):
    """``GET /api/v1/runs`` (scope ``read``): runs, filtered, in keyset pages (served with the
    lifecycle ingest on the same URL by ``usage.api_runs.RunsApi``)."""

    access = ApiAccess(read=Access(area="runs", scope="read"))
    throttle_scope = "read"

    @extend_schema(
        operation_id="runs_list",
        summary="Runs, newest first (or by duration), in keyset pages",
        parameters=[RunQuerySerializer],
        responses={200: cursor_page_schema("RunPage", RunSerializer(many=True))},
    )
    def get(self, request: Request) -> Response:
        form = RunQuerySerializer(data=request.query_params, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        filters = selectors.RunFilters(
            status=data.get("status", ""),
            project=data.get("project", ""),
            template=data.get("template", ""),
            run_type=data.get("run_type", ""),
            start=data.get("start"),
            end=data.get("end"),
            search=data.get("q", ""),
            step=data.get("step", ""),
            failure_type=data.get("failure_type", ""),
            model=data.get("model", ""),
        )
        # Project, template, run type, step, failure type and model in any letter case.
        filters = selectors.run_filters_canonical(filters)
        rows, following = selectors.runs_page(
            filters, after=data["after"], limit=data["limit"], sort=data["sort"]
        )
        return page_response(
            request,
            RunSerializer(rows, many=True).data,
            following={"k": selectors.cursor_text(following)} if following else None,
        )


class RunDetailApi(APIView):
    """``GET /api/v1/runs/{run_id}`` (scope ``read``)."""

    access = ApiAccess(read=Access(area="runs", scope="read"))

    @extend_schema(
        operation_id="run_detail",
        summary=(
            "One run: jobs with attempts, external calls, tokens and cost by model, last errors"
        ),
        parameters=[
            OpenApiParameter(
                "run_id",
                str,
                OpenApiParameter.PATH,
                description="The run id as one percent-encoded path segment ('/' is %2F).",
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, run_id: str) -> Response:
        detail = selectors.run_detail(run_id)
        if detail is None:
            raise NotFound(f"No run {run_id!r} in this tenant.")
        run = detail.run
        calls, calls_total = run_trace.run_calls_first(run, run_trace.API_CALLS_MAX)
        return Response(
            {
                **selectors.run_outline(run),
                "trace_id": run.trace_id or None,
                "requested_at": _iso_or_none(run.requested_at),
                "started_at": _iso_or_none(run.started_at),
                "finished_at": _iso_or_none(run.finished_at),
                "duration_ms": run.duration_ms,
                "ai_cost": f"{detail.token_cost:.10f}",
                "infrastructure_cost": f"{detail.allocated_cost:.2f}",
                "total_cost": f"{detail.token_cost + detail.allocated_cost:.10f}",
                "models": [
                    {
                        "provider": m["provider"],
                        "model": m["model"],
                        "calls": m["calls"],
                        "input_tokens": m["input_tokens"],
                        "output_tokens": m["output_tokens"],
                        "cost": f"{m['cost'] or 0:.10f}",
                    }
                    for m in detail.models
                ],
                "infrastructure": {unit: f"{q:.6f}" for unit, q in detail.infra.items()},
                "jobs": [
                    {
                        "job_id": j.job_id,
                        "step_name": j.step_name,
                        "attempt": j.attempt,
                        "status": j.status,
                        "started_at": _iso_or_none(j.started_at),
                        "finished_at": _iso_or_none(j.finished_at),
                        "duration_ms": j.duration_ms,
                        "failure_type": j.failure_type,
                    }
                    for j in detail.jobs
                ],
                "external_calls": [
                    {
                        "service": c.service,
                        "kind": c.kind,  # external, or llm (tokens and cost: "models")
                        "model": c.model,
                        "started_at": _iso_or_none(c.started_at),
                        "duration_ms": c.duration_ms,
                        "status": c.status,
                        "span_id": c.span_id,
                    }
                    for c in calls
                ],
                # All of them: more than ``external_calls`` holds when a run made more calls
                # than API_CALLS_MAX (the first in start order are listed).
                "external_calls_total": calls_total,
                # The run's last ten errors (span exception events and error statuses), oldest
                # first; the run page has all of them with stack traces and logs.
                "errors": [
                    {**e, "occurred_at": _iso_or_none(e["occurred_at"])}
                    for e in run_trace.run_error_summary(run)
                ],
            }
        )


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment else None


class StepsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=step_selectors.MAX_DAYS,
        help_text="the last N days up to today (the tenant's); default 30",
    )
    start = DayField(required=False, help_text="first day (the tenant's), inclusive")
    end = DayField(required=False, help_text="last day (the tenant's), inclusive; default today")
    by = EnumField(choices=step_selectors.GROUPINGS, default="step")
    sort = EnumField(choices=list(step_selectors.SORTS), default="rework_rate")
    template = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        today = periods.local_date(timezone.now(), connection_zone())
        try:
            attrs["range"] = step_selectors.step_range(
                today=today, days=attrs.get("days"), start=attrs.get("start"), end=attrs.get("end")
            )
        except step_selectors.RangeError as exc:
            raise serializers.ValidationError({"start": str(exc)}) from None
        return attrs


def _rate(value: Decimal | None) -> str | None:
    """A rate (0..1) as text to 4 decimals, rounded once here (half-even)."""
    return None if value is None else str(value.quantize(Decimal("0.0001")))


def _step_period(period: step_selectors.StepPeriod) -> dict[str, object]:
    per_run = period.ai_cost_per_run
    return {
        "runs": period.runs,
        "attempts": period.attempts,
        "retries": period.retries,
        "first_pass_rate": _rate(period.first_pass_rate),
        "rework_rate": _rate(period.rework_rate),
        "failure_rate": _rate(period.failure_rate),
        "p50_ms": period.p50_ms,
        "p95_ms": period.p95_ms,
        "failure_types": [{"type": kind, "count": n} for kind, n in period.failure_types],
        "calls": period.calls,
        "ai_cost": str(quantize_cents(period.ai_cost)),
        "ai_cost_per_run": None if per_run is None else str(quantize_cents(per_run)),
    }


STEP_PERIOD = inline_serializer(
    "StepPeriod",
    {
        "runs": serializers.IntegerField(help_text="runs that ran the step"),
        "attempts": serializers.IntegerField(),
        "retries": serializers.IntegerField(help_text="attempts after a job's first"),
        "first_pass_rate": serializers.CharField(allow_null=True, help_text="0..1, 4 decimals"),
        "rework_rate": serializers.CharField(allow_null=True),
        "failure_rate": serializers.CharField(allow_null=True),
        "p50_ms": serializers.IntegerField(allow_null=True),
        "p95_ms": serializers.IntegerField(allow_null=True),
        "failure_types": serializers.ListField(child=serializers.DictField()),
        "calls": serializers.IntegerField(),
        "ai_cost": serializers.CharField(help_text="USD, rounded to the cent"),
        "ai_cost_per_run": serializers.CharField(allow_null=True),
    },
)
STEPS_RESPONSE = inline_serializer(
    "StepsResponse",
    {
        "start": serializers.DateField(),
        "end": serializers.DateField(),
        "previous_start": serializers.DateField(),
        "previous_end": serializers.DateField(),
        "by": serializers.CharField(),
        "sort": serializers.CharField(),
        "lead_time_ms": serializers.DictField(child=serializers.IntegerField(allow_null=True)),
        "previous_lead_time_ms": serializers.DictField(
            child=serializers.IntegerField(allow_null=True)
        ),
        "succeeded_runs": serializers.IntegerField(),
        "steps": serializers.ListField(child=serializers.DictField()),
    },
)


class StepsApi(APIView):
    """``GET /api/v1/steps`` (scope ``read``): the steps page's figures as JSON."""

    access = ApiAccess(read=Access(area="runs", scope="read"))
    throttle_scope = "read"

    @extend_schema(
        operation_id="steps",
        summary="Where pipelines fail and rework most: figures per step or template and step",
        parameters=[StepsQuerySerializer],
        responses={200: STEPS_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        form = StepsQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        start, end = data["range"]
        report = step_selectors.step_report(
            start=start,
            end=end,
            grouping=data["by"],
            sort=data["sort"],
            template=data.get("template", ""),
        )
        return Response(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "previous_start": report.previous_start.isoformat(),
                "previous_end": report.previous_end.isoformat(),
                "by": report.grouping,
                "sort": data["sort"],
                "lead_time_ms": report.lead_time,
                "previous_lead_time_ms": report.previous_lead_time,
                "succeeded_runs": report.succeeded_runs,
                "steps": [
                    {
                        **({"template": row.template} if row.template is not None else {}),
                        "step": row.step,
                        **_step_period(row.current),
                        "previous": _step_period(row.previous) if row.previous else None,
                    }
                    for row in report.rows
                ],
            }
        )
