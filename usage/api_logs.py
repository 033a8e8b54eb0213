"""``POST /v1/logs``: the OTLP/HTTP log receiver (thin: decode, map, call
``usage.services.logs.logs_ingest``, answer ``ExportLogsServiceResponse``). Same keys, limits and
problem answers as ``usage.api.TracesApi``."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.error_lists import ErrorList
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from usage.api import KEYS_ONLY, _max_future
from usage.domain.otlp_logs import RejectedLog, logs_decode, logs_map
from usage.otlp_http import REFUSED, otlp_body, otlp_refusal
from usage.services.logs import logs_ingest
from usage.services.routing import request_tenant

PROBLEM = {"$ref": "#/components/schemas/Problem"}


class LogsApi(APIView):
    """``POST /v1/logs``: OTLP/HTTP log records (protobuf or JSON, optionally gzip), kept with
    their runs. Point the SDK's ``OTLPLogExporter`` here with
    ``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <key>``. Records that cannot be used (no
    run, unknown tenant, beyond the per-run bound) are counted in ``partial_success`` with the
    reasons. At most ``OTLP_MAX_LOG_RECORDS_PER_REQUEST`` records a request (413 beyond)."""

    throttle_scope = "ingest"
    access = ApiAccess(write=Access(area=None, scope="ingest"))

    @extend_schema(
        summary="OTLP/HTTP log export (protobuf or JSON)",
        auth=KEYS_ONLY,
        request={
            "application/x-protobuf": OpenApiTypes.BINARY,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={
            (200, "application/x-protobuf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="ExportLogsServiceResponse, for a protobuf body"
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="ExportLogsServiceResponse, for a JSON body"
            ),
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(PROBLEM, description="Not OTLP logs."),
            (413, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                PROBLEM, description="The body is too large."
            ),
            (415, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                PROBLEM, description="Neither protobuf nor JSON, or an unknown Content-Encoding."
            ),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        try:
            body, content_type = otlp_body(request)
            message = logs_decode(
                body, content_type, max_records=settings.OTLP_MAX_LOG_RECORDS_PER_REQUEST
            )
            records, rejected = logs_map(message, latest=timezone.now() + _max_future())
        except REFUSED as exc:
            return otlp_refusal(exc, "logs")
        result = logs_ingest(records=records, host_tenant=request_tenant())
        return logs_response(rejected + result.rejected, content_type)


def logs_response(rejected: list[RejectedLog], content_type: str) -> HttpResponse:
    answer = ExportLogsServiceResponse()
    if rejected:
        answer.partial_success.rejected_log_records = len(rejected)
        answer.partial_success.error_message = ErrorList(rejected).sentence(
            lambda r: (
                f"log record at {r.time}"
                + (f" (span {r.span_id})" if r.span_id else "")
                + f": {r.reason}"
            )
        )
    if content_type == "application/json":
        return HttpResponse(json_format.MessageToJson(answer), content_type="application/json")
    return HttpResponse(answer.SerializeToString(), content_type="application/x-protobuf")
