"""``POST /v1/metrics``: the OTLP/HTTP metrics receiver (thin: decode, flatten, call
``runtime.services.metrics.metrics_ingest``, answer). Body limits, gzip and the 400/413/415
answers are the trace receiver's (``usage.domain.payloads``, ``usage.domain.otlp``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from rest_framework.request import Request
from rest_framework.views import APIView

from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from factory_portal.observability import metrics
from factory_portal.tenants.models import Tenant
from runtime.domain.metrics import MetricsBatch, metrics_decode, metrics_flatten
from runtime.services.metrics import MetricsResult, metrics_ingest
from usage.otlp_http import REFUSED, otlp_body, otlp_refusal

# Ingest takes API keys only (a tenant's key, or the platform key on the operator host).
KEYS_ONLY: Any = [{"apiKey": []}]
LISTED = 10  # names or reasons listed in the answer's message, then "and N more"


def _host_tenant() -> Tenant | None:
    """The tenant whose key sent the request; None on the operator host (the platform key)."""
    tenant = getattr(connection, "tenant", None)
    return None if tenant is None or tenant.schema_name == "public" else tenant


class MetricsApi(APIView):
    """``POST /v1/metrics``: an OTLP/HTTP metrics receiver (protobuf or JSON, optionally gzip).

    Point the SDK's ``OTLPMetricExporter`` here with
    ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=https://<host>/v1/metrics`` and
    ``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <key>``. Gauges, sums (cumulative or delta)
    and explicit-bucket histograms are stored; rejected data points, unknown instruments (kept)
    and token/cost instruments (kept, never money) are reported in ``partial_success``. At most
    ``OTLP_MAX_METRIC_POINTS_PER_REQUEST`` data points a request (413 beyond); a body that is not
    OTLP is a 400, a media type OTLP/HTTP does not use a 415.
    """

    throttle_scope = "ingest"
    access = ApiAccess(write=Access(area=None, scope="ingest"))

    @extend_schema(
        summary="OTLP/HTTP metrics export (protobuf or JSON)",
        auth=KEYS_ONLY,
        request={
            "application/x-protobuf": OpenApiTypes.BINARY,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={
            (200, "application/x-protobuf"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="ExportMetricsServiceResponse, for a protobuf body",
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="ExportMetricsServiceResponse, for a JSON body"
            ),
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                {"$ref": "#/components/schemas/Problem"}, description="The body is not OTLP."
            ),
            (413, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                {"$ref": "#/components/schemas/Problem"},
                description="The body is too large, or has too many data points.",
            ),
            (415, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                {"$ref": "#/components/schemas/Problem"},
                description="Neither protobuf nor JSON, or an unknown Content-Encoding.",
            ),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        try:
            body, content_type = otlp_body(request)
            message = metrics_decode(
                body, content_type, max_points=settings.OTLP_MAX_METRIC_POINTS_PER_REQUEST
            )
            now = timezone.now()
            batch = metrics_flatten(
                message, latest=now + timedelta(seconds=settings.INGEST_MAX_FUTURE_SECONDS)
            )
        except REFUSED as exc:
            return otlp_refusal(exc, "metrics")
        result = metrics_ingest(batch=batch, host_tenant=_host_tenant(), now=now)

        def count() -> None:
            metrics.OTLP_METRIC_POINTS.labels("stored").inc(result.stored)
            metrics.OTLP_METRIC_POINTS.labels("rejected").inc(result.rejected_points)

        metrics.guarded(count)
        return metrics_response(batch, result, content_type)


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def answer_message(batch: MetricsBatch, result: MetricsResult) -> str:
    """The ``partial_success`` message: rejected points with reasons, unknown instruments (kept)
    and token/cost instruments (counted, never money)."""
    parts = []
    if result.rejected:
        reasons = [f"{r.points:,} of {r.name}: {r.reason}" for r in result.rejected[:LISTED]]
        more = len(result.rejected) - LISTED
        parts.append(
            f"{result.rejected_points:,} data points rejected ("
            + "; ".join(reasons)
            + (f"; and {more} more reasons" if more > 0 else "")
            + ")"
        )
    if batch.unknown:
        parts.append(
            f"unknown instruments kept but not used by the portal's pages: {_names(batch.unknown)}"
        )
    if batch.usage:
        parts.append(
            f"token and cost instruments counted but kept out of money (costs come from spans): "
            f"{_names(batch.usage)}"
        )
    return ". ".join(parts)


def metrics_response(batch: MetricsBatch, result: MetricsResult, content_type: str) -> HttpResponse:
    answer = ExportMetricsServiceResponse()
    message = answer_message(batch, result)
    if message:
        answer.partial_success.rejected_data_points = result.rejected_points
        answer.partial_success.error_message = message
    if content_type == "application/json":
        return HttpResponse(json_format.MessageToJson(answer), content_type="application/json")
    return HttpResponse(answer.SerializeToString(), content_type="application/x-protobuf")
