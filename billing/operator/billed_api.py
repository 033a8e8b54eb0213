"""Operator API for billed vs estimated AI cost (operator host, operator session only): import a
provider's bill, read a month's drift, true a month up to the bill."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.operator import billed_selectors
from billing.operator.api import RULE_ACCESS, SESSION_ONLY
from billing.operator.models import BilledImport, TrueUp
from billing.operator.services.billed import (
    BilledImportError,
    billed_upload_import,
    month_trueup,
)
from factory_portal.api import problem_response
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from factory_portal.periods import PeriodError, month_parse, month_text

BILLED_ACCESS = RULE_ACCESS  # operators only, in a browser session


class BilledImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = BilledImport
        fields = [
            "id",
            "filename",
            "layout",
            "sha256",
            "rows",
            "skipped",
            "amount",
            "first_day",
            "last_day",
            "imported_at",
        ]


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="FOCUS CSV, OpenAI costs CSV/JSON or Anthropic cost report CSV/JSON (USD)."
    )


class DriftLineSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    billed = serializers.DecimalField(max_digits=30, decimal_places=12)
    estimated = serializers.DecimalField(max_digits=30, decimal_places=12)
    difference = serializers.DecimalField(max_digits=30, decimal_places=12)
    percent = serializers.DecimalField(
        max_digits=14, decimal_places=2, allow_null=True, help_text="of the estimate"
    )
    within_tolerance = serializers.BooleanField(
        source="compared_within",
        allow_null=True,
        help_text="null when the provider has no bill in the month (not compared)",
    )
    provider_billed = serializers.BooleanField(
        help_text="the month has a bill of this provider; false: not compared (no alert)"
    )


class UnmatchedSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    day = serializers.DateField(help_text="UTC day")
    amount = serializers.DecimalField(max_digits=30, decimal_places=12)


class TrueUpLineSerializer(serializers.Serializer):
    tenant = serializers.CharField(
        source="tenant.slug", allow_null=True, help_text="null: unallocated"
    )
    estimated = serializers.DecimalField(max_digits=30, decimal_places=12)
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)


class TrueUpSerializer(serializers.ModelSerializer):
    lines = TrueUpLineSerializer(many=True)

    class Meta:
        model = TrueUp
        fields = ["provider", "model", "billed", "estimated", "amount", "created_at", "lines"]


class DriftSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="YYYY-MM, a UTC month")
    tolerance_percent = serializers.DecimalField(max_digits=7, decimal_places=3)
    billed = serializers.DecimalField(max_digits=30, decimal_places=12)
    estimated = serializers.DecimalField(max_digits=30, decimal_places=12)
    lines = DriftLineSerializer(many=True)
    unmatched_billed = UnmatchedSerializer(many=True)
    unmatched_estimated = UnmatchedSerializer(many=True)
    trueups = TrueUpSerializer(many=True)


PROBLEM = {"$ref": "#/components/schemas/Problem"}
BAD_PERIOD = {
    (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(PROBLEM, description="Not a YYYY-MM month.")
}


def _month(period: str) -> date | Response:
    try:
        return month_parse(period)
    except PeriodError as exc:
        return problem_response(status=400, title="Invalid period", detail=str(exc))


class BilledImportApi(APIView):
    """``POST /api/v1/billed-imports``: import an AI provider's bill (multipart ``file``)."""

    access = BILLED_ACCESS
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="billed_imports_create",
        summary="Import an AI provider's bill",
        auth=SESSION_ONLY,
        request={"multipart/form-data": UploadSerializer},
        responses={
            201: BilledImportSerializer,
            200: OpenApiResponse(BilledImportSerializer, description="Imported before: no-op."),
            (413, PROBLEM_CONTENT_TYPE): OpenApiResponse(PROBLEM, description="Too large."),
            (422, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                PROBLEM,
                description="Not a bill, or bad rows: `errors` names each row (`where`: line or"
                " JSON path) and column. Nothing was imported.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        try:
            result = billed_upload_import(chunks=upload.chunks(), filename=upload.name)
        except BilledImportError as exc:
            return problem_response(
                status=413 if exc.too_large else 422,
                title="Bill refused; nothing was imported",
                detail=str(exc),
                extra=exc.rows.problem_members(
                    lambda e: {"where": e.where, "column": e.column, "message": e.message}
                ),
            )
        data = BilledImportSerializer(result.billed_import).data
        return Response(data, status=201 if result.created else 200)


class BilledDriftApi(APIView):
    """``GET /api/v1/billed-drift/<YYYY-MM>``: billed vs estimated per provider and model."""

    access = BILLED_ACCESS

    @extend_schema(
        operation_id="billed_drift_retrieve",
        summary="Billed vs estimated AI cost of a UTC month",
        auth=SESSION_ONLY,
        parameters=[
            OpenApiParameter(
                "tolerance",
                float,
                description="Percent of the estimate (default: BILLED_DRIFT_TOLERANCE_PERCENT)",
            )
        ],
        responses={200: DriftSerializer, **BAD_PERIOD},
    )
    def get(self, request: Request, period: str) -> Response:
        month = _month(period)
        if isinstance(month, Response):
            return month
        raw = request.query_params.get("tolerance", "").strip()
        tolerance = None
        if raw:
            try:
                tolerance = Decimal(raw)
            except ArithmeticError:
                tolerance = Decimal("NaN")
            if not tolerance.is_finite() or not 0 <= tolerance <= 1000:
                return problem_response(
                    status=400,
                    title="Invalid tolerance",
                    detail=f"tolerance must be a percentage from 0 to 1000; got {raw[:20]!r}",
                )
        drift = billed_selectors.billed_drift(month, tolerance=tolerance)
        body = {
            "period": month_text(month),
            "tolerance_percent": drift.tolerance,
            "billed": drift.billed,
            "estimated": drift.estimated,
            "lines": drift.lines,
            "unmatched_billed": drift.unmatched_billed,
            "unmatched_estimated": drift.unmatched_estimated,
            "trueups": billed_selectors.trueups(month),
        }
        return Response(DriftSerializer(body).data)


class BilledTrueUpApi(APIView):
    """``POST /api/v1/billed-drift/<YYYY-MM>/true-up``: true the month up to the bill."""

    access = BILLED_ACCESS

    @extend_schema(
        operation_id="billed_trueup_create",
        summary="True a UTC month's AI cost up to the bill (replaces an earlier true-up)",
        auth=SESSION_ONLY,
        request=None,
        responses={200: TrueUpSerializer(many=True), **BAD_PERIOD},
    )
    def post(self, request: Request, period: str) -> Response:
        month = _month(period)
        if isinstance(month, Response):
            return month
        month_trueup(period=month)
        return Response(TrueUpSerializer(billed_selectors.trueups(month), many=True).data)
