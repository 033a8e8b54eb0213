"""Real OTLP payloads for tests, built with the OpenTelemetry SDK (not by hand)."""

from __future__ import annotations

import base64
import json

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode


def factory_run_spans(
    *,
    run_id: str = "run-otel-1",
    tenant: str | None = "alpha",
    project: str = "checkout",
    resource: dict | None = None,
    llm_attributes: dict | None = None,
    with_run_span: bool = True,
    fail_job_first: bool = True,
) -> list[ReadableSpan]:
    """One factory run: a run span, a job with a failed first attempt, LLM calls in the second
    attempt (current GenAI names, deprecated names and llm.* names) and an external call."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "factory"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("factory")
    run_attrs = {
        "run.id": run_id,
        "run.project_id": project,
        "run.template_recipe_id": "python-fastapi-service",
        "run.type": "microservice",
        "run.status": "succeeded",
    }
    if tenant:
        run_attrs["run.tenant_id"] = tenant
    if not with_run_span:
        run_attrs = {}
    with tracer.start_as_current_span(
        "factory.run.execute" if with_run_span else "other-root", attributes=run_attrs
    ):
        if fail_job_first:
            with tracer.start_as_current_span(
                "factory.job.execute",
                attributes={
                    "job.id": "implement",
                    "job.step_name": "implement",
                    "job.attempt": 1,
                },
            ) as job:
                job.set_status(Status(StatusCode.ERROR, "llm_timeout"))
        with tracer.start_as_current_span(
            "factory.job.execute",
            attributes={
                "job.id": "implement",
                "job.step_name": "implement",
                "job.attempt": 2,
                "job.status": "succeeded",
            },
        ):
            with tracer.start_as_current_span(
                "chat claude-sonnet-4-5",
                attributes={
                    "gen_ai.provider.name": "anthropic",
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "claude-sonnet-4-5",
                    "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                    "gen_ai.usage.input_tokens": 12_000,
                    "gen_ai.usage.output_tokens": 800,
                    "gen_ai.usage.cache_read.input_tokens": 5_000,
                    **(llm_attributes or {}),
                },
            ):
                pass
            with tracer.start_as_current_span(
                "chat gpt-4.1",
                attributes={
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4.1",
                    "gen_ai.usage.prompt_tokens": 2_000,
                    "gen_ai.usage.completion_tokens": 100,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "llm call",
                attributes={
                    "llm.provider": "google",
                    "llm.model": "gemini-2.5-flash",
                    "llm.prompt_tokens": 3_000,
                    "llm.completion_tokens": 300,
                },
            ):
                pass
            with tracer.start_as_current_span("factory.external.github") as call:
                call.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def as_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    return encode_spans(spans)


def as_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON as exporters send it: protobuf's JSON mapping, but ids as hex, not base64."""
    document = json.loads(json_format.MessageToJson(request))
    for resource_spans in document.get("resourceSpans", []):
        for scope in resource_spans.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


JAVA_TRACE = """java.lang.IllegalStateException: Order 8812 not found
\tat java.base/java.util.Optional.orElseThrow(Optional.java:403)
\tat com.acme.billing.OrderService.load(OrderService.java:57)
\tat com.acme.billing.OrderController.get(OrderController.java:31)
\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)
"""


class DeployConflict(Exception):
    pass


def _deploy(manifest: str) -> None:
    raise DeployConflict(f"manifest {manifest!r} conflicts with revision 41")


def failing_run_spans(
    *,
    run_id: str = "run-err-1",
    tenant: str | None = "alpha",
    project: str = "checkout",
    template: str = "python-fastapi-service",
    manifest: str = "deploy-7f3a9c21.yaml",
    with_run_span: bool = True,
) -> list[ReadableSpan]:
    """A failed run: the deploy job's first attempt raises (a real Python exception recorded by
    the SDK), its second attempt's external call fails with a Java stack trace, an LLM call in it
    fails with status only, and a span of no factory kind fails with an exception event."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "factory"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("factory")
    run_attrs = {
        "run.id": run_id,
        "run.project_id": project,
        "run.template_recipe_id": template,
        "run.type": "microservice",
        "run.status": "failed",
    }
    if tenant:
        run_attrs["run.tenant_id"] = tenant
    with tracer.start_as_current_span(
        "factory.run.execute" if with_run_span else "other-root",
        attributes=run_attrs if with_run_span else {},
        record_exception=False,
        set_status_on_exception=False,
    ):
        with tracer.start_as_current_span(
            "factory.job.execute",
            attributes={"job.id": "deploy", "job.step_name": "deploy", "job.attempt": 1},
            record_exception=False,
            set_status_on_exception=False,
        ) as job:
            try:
                _deploy(manifest)
            except DeployConflict as exc:
                job.record_exception(exc)
                job.set_status(Status(StatusCode.ERROR, str(exc)))
        with tracer.start_as_current_span(
            "factory.job.execute",
            attributes={"job.id": "deploy", "job.step_name": "deploy", "job.attempt": 2},
        ):
            with tracer.start_as_current_span("factory.external.billing") as call:
                call.add_event(
                    "exception",
                    {
                        "exception.type": "java.lang.IllegalStateException",
                        "exception.message": "Order 8812 not found",
                        "exception.stacktrace": JAVA_TRACE,
                    },
                )
                call.set_status(Status(StatusCode.ERROR, "HTTP 500"))
            with tracer.start_as_current_span(
                "chat gpt-4.1",
                attributes={
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4.1",
                    "gen_ai.usage.input_tokens": 1_000,
                    "gen_ai.usage.output_tokens": 10,
                    "error.type": "RateLimitError",
                },
            ) as llm:
                llm.set_status(Status(StatusCode.ERROR, "429 Too Many Requests, retry after 20s"))
            with tracer.start_as_current_span("git.push") as push:
                push.add_event(
                    "exception",
                    {
                        "exception.type": "GitError",
                        "exception.message": "remote rejected: non-fast-forward",
                    },
                )
    provider.shutdown()
    return list(exporter.get_finished_spans())
