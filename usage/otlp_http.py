"""What the OTLP/HTTP receivers share (``/v1/traces`` and ``/v1/logs`` here, ``/v1/metrics`` in
``runtime``): reading the body within the request limits, and the problem answer for a body that
cannot be used (400 not OTLP, 413 too large or too many items, 415 another media type or
encoding), counted per signal. HTTP glue only: decoding stays in each signal's domain module."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from factory_portal.api import problem_response, request_body
from factory_portal.observability import metrics
from usage.domain.otlp import OtlpDecodeError, OtlpMediaTypeError, OtlpTooLarge
from usage.domain.payloads import PayloadError, body_decompress, json_values_check, media_type

REFUSED = (PayloadError, OtlpDecodeError)


def otlp_body(request: Request) -> tuple[bytes, str]:
    """The request's body (gzip or deflate undone, at most ``INGEST_MAX_BODY_BYTES`` either way;
    a JSON body's values counted) and its media type. Raises one of ``REFUSED``."""
    limit = settings.INGEST_MAX_BODY_BYTES
    content_type = media_type(request.content_type)
    body = body_decompress(
        request_body(request, limit), request.META.get("HTTP_CONTENT_ENCODING", ""), limit
    )
    if content_type == "application/json":
        json_values_check(body, settings.INGEST_MAX_JSON_VALUES)
    return body, content_type


def otlp_refusal(exc: PayloadError | OtlpDecodeError, signal: str) -> HttpResponse:
    """The problem answer for a body of ``signal`` (traces, logs, metrics) that was refused."""
    reason = "too_many_items" if isinstance(exc, OtlpTooLarge) else "unusable_body"
    metrics.guarded(lambda: metrics.INGEST_REJECTED_BATCHES.labels(signal, reason).inc())
    if isinstance(exc, PayloadError):
        status, title, detail = exc.status, "Unusable body", exc.message
    elif isinstance(exc, OtlpTooLarge):
        status, title, detail = 413, exc.title, str(exc)
    else:
        status = 415 if isinstance(exc, OtlpMediaTypeError) else 400
        title, detail = "Unusable body", str(exc)
    return problem_response(status=status, title=title, detail=detail)
