"""Usage API views for writing: ingest of events, run updates and OTLP traces, and the project
list (thin: parse, call ``usage.services.entry``, answer; routing, transactions and retries are
the entry's)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from factory_portal.accounts.authentication import Access, ApiAccess
from factory_portal.api import problem_response, request_body
from factory_portal.error_lists import ErrorList
from factory_portal.errors import PROBLEM_CONTENT_TYPE
from factory_portal.observability import context, metrics
from usage.domain.events import FieldError, events_parse
from usage.domain.events_fast import events_decode_fast
from usage.domain.otlp import (
    RejectedSpan,
    flatten,
    spans_map,
    traces_decode,
)
from usage.domain.payloads import (
    JSON_TYPES,
    PayloadError,
    TooManyItems,
    body_decompress,
    items_decode,
    json_values_check,
    media_type,
)
from usage.domain.runs import run_update_parse
from usage.models import Project
from usage.otlp_http import REFUSED, otlp_body, otlp_refusal
from usage.services.entry import batch_ingest, traces_ingest
from usage.services.routing import request_tenant


class ProjectListApi(ListAPIView):
    """``GET /api/v1/projects``: the tenant's projects, paginated (scope ``read``)."""

    class ProjectSerializer(serializers.ModelSerializer):
        class Meta:
            model = Project
            fields = ["slug", "name", "created_at"]

    access = ApiAccess(read=Access(area="signed_in", scope="read"))
    serializer_class = ProjectSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Project.objects.order_by("slug")


def invalid_items(
    errors: ErrorList[FieldError] | ErrorList[dict[str, object]], detail: str
) -> Response:
    """422 listing the first bad items (``errors``) and how many there are (``errors_total``)."""
    note = errors.listed_note()
    return problem_response(
        status=422,
        title="Invalid items",
        detail=f"{detail} {note}" if note else detail,
        extra=errors.problem_members(lambda e: e.as_dict() if isinstance(e, FieldError) else e),
    )


class BatchIngestApi(APIView):
    """A batch endpoint: body limits, gzip, JSON or NDJSON and all-or-nothing validation; the
    store (and, with the platform key, routing every item to its tenant) is
    ``usage.services.entry.batch_ingest``'s."""

    access = ApiAccess(write=Access(area=None, scope="ingest"))
    throttle_scope = "ingest"
    items_key = "events"

    def parse(
        self, items: list[Any], *, now: datetime, platform: bool
    ) -> tuple[list[Any], list[FieldError]]:
        raise NotImplementedError

    def parse_fast(
        self, body: bytes, *, now: datetime, platform: bool
    ) -> tuple[list[Any], list[FieldError]] | None:
        """The items of a JSON body when all are valid, by a faster path than ``parse``; None
        when that path is not sure (``parse`` then decides and reports)."""
        return None

    def post(self, request: Request) -> Response:
        limit = settings.INGEST_MAX_BODY_BYTES
        host_tenant = request_tenant()
        now, platform = timezone.now(), host_tenant is None
        try:
            body = body_decompress(
                request_body(request, limit), request.META.get("HTTP_CONTENT_ENCODING", ""), limit
            )
            fast = None
            if settings.INGEST_FAST_DECODE and media_type(request.content_type) in JSON_TYPES:
                json_values_check(body, settings.INGEST_MAX_JSON_VALUES)
                fast = self.parse_fast(body, now=now, platform=platform)
            raw_items = (
                fast[0]
                if fast is not None
                else items_decode(
                    body,
                    request.content_type,
                    self.items_key,
                    settings.INGEST_MAX_EVENTS,
                    settings.INGEST_MAX_JSON_VALUES,
                )
            )
        except TooManyItems as exc:
            self._refused("too_many_items", 0)
            return problem_response(status=413, title="Too many items", detail=exc.message)
        except PayloadError as exc:
            self._refused("invalid_items" if exc.errors else "unusable_body", exc.errors.total)
            if exc.errors:
                return invalid_items(exc.errors, exc.message)
            return problem_response(status=exc.status, title="Unusable body", detail=exc.message)
        items, errors = fast or self.parse(raw_items, now=now, platform=platform)
        outcome = batch_ingest(
            kind=self.items_key, items=items, errors=errors, host_tenant=host_tenant
        )
        if outcome.errors:
            self._refused("invalid_items", len(raw_items))
            return invalid_items(
                ErrorList(outcome.errors),
                f"{len(outcome.errors):,} of {len(raw_items):,} items are invalid; "
                "nothing was stored.",
            )
        metrics.guarded(
            lambda: metrics.INGEST_BATCH_SIZE.labels(self.items_key).observe(len(raw_items))
        )
        stored = {"accepted": outcome.accepted, "duplicates": outcome.duplicates}
        if outcome.expired:
            # Events older than their tenant keeps raw rows for: refused one by one, the rest
            # of the batch is stored (re-sending it changes nothing but these stay refused).
            listed = ErrorList(outcome.expired)
            note = listed.listed_note()
            detail = (
                f"{len(outcome.expired):,} of {len(raw_items):,} events are older than the"
                " tenant's raw event retention and were not stored; the others were."
            )
            return problem_response(
                status=422,
                title="Events past retention",
                detail=f"{detail} {note}" if note else detail,
                extra={**listed.problem_members(lambda e: e.as_dict()), **stored},
            )
        return Response(stored)

    def _refused(self, reason: str, items: int) -> None:
        def count() -> None:
            metrics.INGEST_REJECTED_BATCHES.labels(self.items_key, reason).inc()
            if items:
                tenant = context.get("tenant_id") or "public"
                metrics.INGEST_EVENTS.labels(self.items_key, tenant, "refused").inc(items)

        metrics.guarded(count)


# Ingest takes API keys only (a tenant's key, or the platform key on the operator host).
KEYS_ONLY = [{"apiKey": []}]


def batch_schema(key: str) -> Any:
    """The OpenAPI description of a batch endpoint whose items are listed under ``key``."""
    problem = {"$ref": "#/components/schemas/Problem"}
    return extend_schema_view(
        post=extend_schema(
            summary=f"Ingest a batch of {key} (JSON or NDJSON; gzip allowed)",
            auth=KEYS_ONLY,
            request={
                "application/json": {
                    "type": "object",
                    "properties": {
                        key: {
                            "type": "array",
                            "items": {"type": "object"},
                            "maxItems": settings.INGEST_MAX_EVENTS,
                        }
                    },
                    "required": [key],
                    "additionalProperties": False,
                },
                "application/x-ndjson": {"type": "string", "description": "one item per line"},
            },
            responses={
                200: inline_serializer(
                    f"{key.title()}IngestResult",
                    {
                        "accepted": serializers.IntegerField(),
                        "duplicates": serializers.IntegerField(),
                    },
                ),
                (413, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                    problem, description="The body or the batch is too large."
                ),
                (415, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                    problem, description="Not JSON or NDJSON, or an unknown Content-Encoding."
                ),
                (422, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                    problem, description="Invalid items (listed in `errors`); nothing was stored."
                ),
            },
        )
    )


def _max_future() -> timedelta:
    return timedelta(seconds=settings.INGEST_MAX_FUTURE_SECONDS)


@batch_schema("events")
class EventIngestApi(BatchIngestApi):
    """``POST /api/v1/events``: LLM and infrastructure usage, up to 10,000 events a request.
    One invalid event: 422 listing every bad event, nothing stored. Known event ids are counted
    as duplicates and change nothing."""

    items_key = "events"

    def parse(self, items, *, now, platform):  # type: ignore[no-untyped-def]
        return events_parse(items, now=now, max_future=_max_future(), platform=platform)

    def parse_fast(self, body, *, now, platform):  # type: ignore[no-untyped-def]
        events = events_decode_fast(
            body,
            max_items=settings.INGEST_MAX_EVENTS,
            now=now,
            max_future=_max_future(),
            platform=platform,
        )
        return None if events is None else (events, [])


@batch_schema("runs")
class RunIngestApi(BatchIngestApi):
    """``POST /api/v1/runs``: run lifecycle updates with their jobs. Stale or re-sent updates
    change nothing and are counted as duplicates."""

    items_key = "runs"

    def parse(self, items, *, now, platform):  # type: ignore[no-untyped-def]
        parsed = [
            run_update_parse(item, index, now=now, max_future=_max_future(), platform=platform)
            for index, item in enumerate(items)
        ]
        return (
            [p for p in parsed if not isinstance(p, FieldError)],
            [p for p in parsed if isinstance(p, FieldError)],
        )


class TracesApi(APIView):
    """``POST /v1/traces``: an OTLP/HTTP trace receiver (protobuf or JSON, optionally gzip).

    Point the factory's OpenTelemetry exporter here with
    ``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <key>``. Spans that cannot be used are
    reported in the response's ``partial_success`` with the reasons; spans of a run not seen yet
    are kept until the run span arrives. At most ``OTLP_MAX_SPANS_PER_REQUEST`` spans a request
    (413 beyond); an unusable body (not OTLP, ids of the wrong length) is a 400.
    """

    throttle_scope = "ingest"

    access = ApiAccess(write=Access(area=None, scope="ingest"))

    @extend_schema(
        summary="OTLP/HTTP trace export (protobuf or JSON)",
        auth=KEYS_ONLY,
        request={
            "application/x-protobuf": OpenApiTypes.BINARY,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={
            (200, "application/x-protobuf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="ExportTraceServiceResponse, for a protobuf body"
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="ExportTraceServiceResponse, for a JSON body"
            ),
            (413, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                {"$ref": "#/components/schemas/Problem"}, description="The body is too large."
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
            message = traces_decode(
                body, content_type, max_spans=settings.OTLP_MAX_SPANS_PER_REQUEST
            )
            spans = flatten(message)
        except REFUSED as exc:
            return otlp_refusal(exc, "traces")
        records, rejected = spans_map(spans, latest=timezone.now() + _max_future())
        result = traces_ingest(records=records, host_tenant=request_tenant())
        rejected += result.rejected

        def count() -> None:
            metrics.OTLP_SPANS.labels("stored").inc(result.stored)
            metrics.OTLP_SPANS.labels("parked").inc(result.parked)
            metrics.OTLP_SPANS.labels("rejected").inc(len(rejected))
            used = result.stored + result.parked + len(rejected)
            metrics.OTLP_SPANS.labels("ignored").inc(max(0, len(spans) - used))

        metrics.guarded(count)
        return otlp_response(rejected, content_type)


def otlp_response(rejected: list[RejectedSpan], content_type: str) -> HttpResponse:
    answer = ExportTraceServiceResponse()
    if rejected:
        answer.partial_success.rejected_spans = len(rejected)
        answer.partial_success.error_message = ErrorList(rejected).sentence(
            lambda r: f"span {r.span_id} ({r.name}): {r.reason}"
        )
    if content_type == "application/json":
        return HttpResponse(json_format.MessageToJson(answer), content_type="application/json")
    return HttpResponse(answer.SerializeToString(), content_type="application/x-protobuf")
