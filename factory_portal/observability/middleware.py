"""Per-request observability: the request id, the log context, one access log line (its path
with secrets masked), the HTTP duration metric and the tenant on the request's span.
``/metrics`` is answered here too, before tenant routing, so any host name of the portal can be
scraped."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch
from opentelemetry import trace

from factory_portal.observability import context, metrics, tracing
from factory_portal.observability.masking import secret_routes_prepare, secrets_mask

access_log = logging.getLogger("portal.access")
REQUEST_ID_HEADER = "X-Request-ID"
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def _route(request: HttpRequest) -> str:
    """A low-cardinality name for the URL: its pattern, never the concrete path."""
    match: ResolverMatch | None = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return "/" + match.route
    if request.path in PROBES:
        return request.path
    if request.path.startswith(settings.STATIC_URL):
        return settings.STATIC_URL
    return "unmatched"


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        secret_routes_prepare()  # before the first request, not inside some thread's log line

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started, started_cpu = time.perf_counter(), time.thread_time()
        span_context = trace.get_current_span().get_span_context()
        trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        request_id = context.request_id_resolve(request.headers.get(REQUEST_ID_HEADER), trace_id)
        with context.bind(request_id=request_id, tenant_id=None, run_id=None, job_id=None):
            if request.path == "/metrics":
                response = metrics.metrics_response(request)
            else:
                response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            metrics.guarded(lambda: self._record(request, response, started, started_cpu))
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        """The tenant is known once routing picked the schema, and a run or job when the URL
        names one: bind them before the view runs."""
        tenant_id = context.tenant_label()
        if tenant_id:
            context.update(tenant_id=tenant_id)
            tracing.span_tenant_set(tenant_id)
        named = {k: str(kwargs[k]) for k in ("run_id", "job_id") if k in kwargs}
        if named:
            context.update(**named)

    def _record(
        self, request: HttpRequest, response: HttpResponse, started: float, started_cpu: float
    ) -> None:
        elapsed = time.perf_counter() - started
        cpu = time.thread_time() - started_cpu  # this thread's CPU: Python and the driver
        route = _route(request)
        metrics.HTTP_REQUEST_DURATION.labels(
            metrics.method_label(request.method), route, str(response.status_code)
        ).observe(elapsed)
        level = logging.DEBUG if request.path in PROBES else logging.INFO
        if response.status_code >= 500:
            level = logging.ERROR
        # Masked here too, not only by the formatter: any handler may receive the record.
        path = secrets_mask(request.path)
        access_log.log(
            level,
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "method": request.method,
                "path": path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
                "cpu_ms": round(cpu * 1000, 1),
            },
        )
