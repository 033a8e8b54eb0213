"""End to end: the stock OpenTelemetry OTLP/HTTP exporter sends a factory run to a live portal
server; the run, its jobs and the priced LLM calls are then read back from the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django_tenants.utils import schema_context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from factory_portal.accounts.models import ApiKey
from factory_portal.accounts.services import api_key_create
from usage.models import (
    ExternalCall,
    Job,
    LlmUsageDaily,
    LlmUsageEvent,
    LlmUsageHourly,
    Project,
    Run,
    RunDaily,
    StepDaily,
)
from usage.trace_routing.models import TraceRoute

PROJECT = "e2e-otel"
TEMPLATE = "e2e-otel-library"  # a template no other test uses: its step rollup rows are ours
# The test reads in its own (rolled back) transaction what the server thread committed.
pytestmark = pytest.mark.django_db


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def portal(django_db_setup, django_db_blocker) -> Iterator[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    """A real HTTP server on a free loopback port, and an ingest key of tenant alpha (both
    committed: the server has its own database connection)."""
    with django_db_blocker.unblock():
        with schema_context("alpha"):
            api_key, raw = api_key_create(name="e2e", scopes=["ingest"])
        server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
        thread = threading.Thread(target=_serve, args=(server,), daemon=True)
        thread.start()
        try:
            yield "127.0.0.1", server.server_port, raw
        finally:
            server.shutdown()
            thread.join(10)
            with schema_context("alpha"):
                _cleanup()
                ApiKey.objects.filter(pk=api_key.pk).delete()


def _serve(server) -> None:  # type: ignore[no-untyped-def]
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        connections.close_all()  # this thread's connection, or the test database stays in use


def _cleanup() -> None:
    runs = Run.objects.filter(project__slug=PROJECT)
    TraceRoute.objects.filter(run_id__in=list(runs.values_list("run_id", flat=True))).delete()
    ExternalCall.objects.filter(run__in=runs).delete()
    LlmUsageEvent.objects.filter(project__slug=PROJECT).delete()
    for model in (LlmUsageHourly, LlmUsageDaily, RunDaily):
        model.objects.filter(project__slug=PROJECT).delete()
    # The step rollup has no project: its rows of this test's template and steps go too.
    StepDaily.objects.filter(template=TEMPLATE, step_name__in=("plan", "implement")).delete()
    runs.delete()
    Project.objects.filter(slug=PROJECT).delete()


def test_stock_exporter_to_live_server(portal):
    host, port, key = portal
    exporter = OTLPSpanExporter(
        endpoint=f"http://{host}:{port}/v1/traces",
        headers={"Authorization": f"Bearer {key}", "Host": f"alpha.localhost:{port}"},
        timeout=10,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "software-factory"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("factory")
    with tracer.start_as_current_span(
        "factory.run.execute",
        attributes={
            "run.id": "e2e-run-1",
            "run.tenant_id": "alpha",
            "run.project_id": PROJECT,
            "run.template_recipe_id": TEMPLATE,
            "run.type": "library",
            "run.status": "succeeded",
        },
    ):
        for step in ("plan", "implement"):
            with tracer.start_as_current_span(
                "factory.job.execute",
                attributes={
                    "job.id": step,
                    "job.step_name": step,
                    "job.attempt": 1,
                    "job.status": "succeeded",
                },
            ):
                with tracer.start_as_current_span(
                    f"chat {step}",
                    attributes={
                        "gen_ai.provider.name": "openai",
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4.1-mini",
                        "gen_ai.usage.input_tokens": 10_000,
                        "gen_ai.usage.output_tokens": 1_000,
                    },
                ):
                    pass
                with tracer.start_as_current_span("factory.external.pypi"):
                    pass
    assert provider.force_flush(timeout_millis=15_000)
    provider.shutdown()

    with schema_context("alpha"):
        run = Run.objects.select_related("project").get(run_id="e2e-run-1")
        jobs = sorted(Job.objects.filter(run=run).values_list("step_name", "status"))
        calls = list(LlmUsageEvent.objects.filter(run=run))
        externals = ExternalCall.objects.filter(run=run, kind="external").count()
    assert (run.status, run.template_recipe_id, run.project.slug) == (
        "Succeeded",
        TEMPLATE,
        PROJECT,
    )
    assert len(run.trace_id) == 32
    assert jobs == [("implement", "Succeeded"), ("plan", "Succeeded")]
    # gpt-4.1-mini: $0.40 in / $1.60 out per million tokens -> $0.0056 per call
    assert [c.cost for c in calls] == [Decimal("0.0056000000")] * 2
    assert all(c.job_id is not None for c in calls)
    assert externals == 2
