"""Opt-in OpenTelemetry tracing of the portal: requests, database calls, Celery tasks and
outbound HTTP (webhooks).

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set:
then nothing is instrumented, no tracer provider exists and the cost is one environment lookup at
start-up. When on, the standard ``OTEL_*`` variables apply (service name, resource attributes,
headers, timeout, compression, protocol ``http/protobuf`` or ``grpc``); the sampler defaults to
ParentBased(TraceIdRatio) with the ratio from ``OTEL_TRACES_SAMPLER_ARG`` (default 1.0).

Secrets in request URLs (invitation tokens, secret query parameters) are masked in the spans'
names and attributes before they are exported (``span_secrets_mask``).

A dead or slow collector never reaches a request: spans are queued in memory (bounded, dropped
when full) and exported in batches by a background thread; any error while configuring tracing
is logged and leaves the portal running untraced.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

from factory_portal.observability import context
from factory_portal.observability.masking import MASK, secrets_mask, url_origin_only

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

TENANT_ATTRIBUTE = "tenant.id"
DEFAULT_EXPORT_TIMEOUT_S = 5.0
_provider: TracerProvider | None = None


def tracing_enabled_by_env() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def tracing_configure() -> bool:
    """Set up tracing from the environment once per process; True when it is on."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_enabled_by_env():
        return False
    try:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = provider_build()
        provider.add_span_processor(BatchSpanProcessor(_exporter_from_env()))
        instrument(provider)
        trace.set_tracer_provider(provider)
    except Exception:
        logger.warning("tracing is off: its configuration failed", exc_info=True)
        return False
    _provider = provider
    logger.info("tracing on: spans go to %s", _endpoint())
    return True


def provider_build() -> TracerProvider:
    """A tracer provider with the service resource, the sampler and the tenant processor."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider, sampling

    sampler = None  # the SDK reads OTEL_TRACES_SAMPLER itself when it is set
    if not os.environ.get("OTEL_TRACES_SAMPLER"):
        sampler = sampling.ParentBased(sampling.TraceIdRatioBased(_ratio()))
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "factory-portal")}
    )
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(TenantSpanProcessor())
    return provider


def _ratio() -> float:
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    try:
        ratio = float(raw) if raw else 1.0
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        logger.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a ratio in [0, 1]; sampling all", raw)
        return 1.0
    return ratio


def _endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )


def _exporter_from_env() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError as exc:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the grpc extra: "
                "pip install 'factory-portal[grpc]'"
            ) from exc
        # The grpc extra is optional, so its types are not always there (config: missing imports).
        exporter: SpanExporter = GrpcSpanExporter(timeout=_timeout())
        return exporter
    if protocol != "http/protobuf":
        raise RuntimeError(f"OTLP protocol {protocol!r} is not supported (http/protobuf, grpc)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(timeout=_timeout())


def _timeout() -> float | None:
    """The exporter's time limit per batch, retries included. Unset, 5 s instead of the SDK's
    10 s: at shutdown a dead collector holds each process up to this long (graceful shutdown
    must fit into gunicorn's ``GRACEFUL_TIMEOUT``)."""
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    ):
        return None  # the exporter reads the variable itself
    return DEFAULT_EXPORT_TIMEOUT_S


def instrument(provider: TracerProvider) -> None:
    """Trace Django requests, psycopg queries, Celery tasks and ``requests`` calls."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    # The probes and the metrics scrape would be most of the spans and tell nothing. The hooks
    # run after the instrumentation has set a request span's URL attributes (request) and its
    # last ones (response): secrets in URLs never reach the exporter.
    DjangoInstrumentor().instrument(
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics,static/",
        request_hook=lambda span, request: span_secrets_mask(span),
        response_hook=lambda span, request, response: span_secrets_mask(span),
    )
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(
        tracer_provider=provider,
        request_hook=lambda span, request: span_outbound_url_reduce(span),
        response_hook=lambda span, request, response: span_outbound_url_reduce(span),
    )


def uninstrument() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (
        DjangoInstrumentor(),
        PsycopgInstrumentor(),
        CeleryInstrumentor(),
        RequestsInstrumentor(),
    ):
        instrumentor.uninstrument()


def span_tenant_set(tenant_id: str | None) -> None:
    """Mark the active span (a request's or a task's) with its tenant; never raises."""
    if not tenant_id:
        return
    try:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(TENANT_ATTRIBUTE, tenant_id)
    except Exception:
        logger.debug("could not mark the span with its tenant", exc_info=True)


def span_secrets_mask(span: trace.Span) -> None:
    """Mask secrets (``masking.secrets_mask``: tokens in URL paths and queries, credentials) in
    the span's name and every text attribute (``http.url``, ``http.target``, ``url.full``,
    ``url.path``, ``url.query``...); never raises."""
    try:
        if not span.is_recording():
            return
        name = getattr(span, "name", None)
        if isinstance(name, str) and (masked := secrets_mask(name)) != name:
            span.update_name(masked)
        for key, value in dict(getattr(span, "attributes", None) or {}).items():
            if isinstance(value, str) and (masked := secrets_mask(value)) != value:
                span.set_attribute(key, masked)
    except Exception:
        logger.debug("could not mask the span's secrets", exc_info=True)


# Outbound span attributes that hold the whole URL, and those that hold its path or query.
_OUTBOUND_URLS = ("http.url", "url.full")
_OUTBOUND_PARTS = ("http.target", "url.path", "url.query")


def span_outbound_url_reduce(span: trace.Span) -> None:
    """An outbound call's span (webhooks) keeps the receiver's scheme, host and port only: its
    path and query may be the credential (``masking.url_origin_only``); never raises."""
    try:
        if not span.is_recording():
            return
        attributes = dict(getattr(span, "attributes", None) or {})
        for key in _OUTBOUND_URLS:
            if isinstance(value := attributes.get(key), str):
                span.set_attribute(key, url_origin_only(value))
        for key in _OUTBOUND_PARTS:
            if isinstance(attributes.get(key), str):
                span.set_attribute(key, MASK)
    except Exception:
        logger.debug("could not reduce the outbound span's URL", exc_info=True)
    span_secrets_mask(span)


class TenantSpanProcessor(SpanProcessor):
    """Gives every span started inside a tenant's request or task the ``tenant.id`` attribute
    (database and outbound HTTP spans included)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        tenant_id = context.get("tenant_id")
        if tenant_id:
            span.set_attribute(TENANT_ATTRIBUTE, tenant_id)
