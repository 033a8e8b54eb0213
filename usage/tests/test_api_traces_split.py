"""A run's spans as the stock SDK's batch exporter sends them: a span goes when it ends, so a
long job's calls reach the portal before the job span, and a trace may hold several runs. Each
call keeps its job (and its errors their step) and its own run (a review with the SDK found
calls sent before their job span stored without it, and the calls of two runs of one trace all
given to the last run)."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tests.support import key_for
from usage.models import ExternalCall, Job, LlmUsageEvent, Run, SpanError
from usage.tests.test_api_traces import parse_response, post_spans

pytestmark = pytest.mark.django_db

CHAT = {
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4.1",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 100,
}


def _tracer(resource: dict | None = None):  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "factory"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("factory"), exporter


def _run(tracer, run_id: str, *, step: str = "build", failing_call: bool = False) -> None:  # type: ignore[no-untyped-def]
    """A run span with one job whose chat call sits under a tool span, and an external call."""
    run = tracer.start_as_current_span(
        "factory.run.execute", attributes={"run.id": run_id, "run.project_id": "web"}
    )
    job = tracer.start_as_current_span(
        "factory.job.execute",
        attributes={"job.id": f"{run_id}-job", "job.step_name": step, "job.attempt": 1},
    )
    with run, job:
        tool = tracer.start_as_current_span("tool: edit files")
        with tool, tracer.start_as_current_span("chat gpt-4.1", attributes=CHAT) as chat:
            if failing_call:
                chat.record_exception(TimeoutError("model timed out"))
                chat.set_status(Status(StatusCode.ERROR, "timeout"))
        with tracer.start_as_current_span("factory.external.github"):
            pass


def _stored(run_id: str) -> dict[str, object]:
    run = Run.objects.get(run_id=run_id)
    return {
        "calls": sorted(
            (e.model, e.job_ref, e.job_id is not None)
            for e in LlmUsageEvent.objects.filter(run=run)
        ),
        "external": sorted(
            (c.service, c.job.job_id if c.job else None)
            for c in ExternalCall.objects.filter(run=run)
        ),
        "errors": sorted(
            (e.type, e.job_ref, e.step_name, e.attempt) for e in SpanError.objects.filter(run=run)
        ),
    }


def _by_name(spans: list[ReadableSpan], *names: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name in names]


def test_calls_sent_before_their_job_span_keep_their_job_and_step(alpha):
    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer()
    _run(tracer, "split", failing_call=True)
    _run(tracer, "whole", failing_call=True)
    spans = list(exporter.get_finished_spans())
    split = [s for s in spans if s.context.trace_id == spans[0].context.trace_id]
    whole = [s for s in spans if s not in split]
    # The calls (and the tool span between them and the job) first, the job and run later.
    early = [s for s in split if s.name not in ("factory.job.execute", "factory.run.execute")]
    for part in (early, _by_name(split, "factory.job.execute", "factory.run.execute"), whole):
        assert parse_response(post_spans(alpha.host, key, part)).partial_success.rejected_spans == 0
    with schema_context(alpha.schema):
        expected = _stored("whole")
        assert expected["calls"] == [("gpt-4.1", "whole-job", True)]
        assert expected["errors"] == [("TimeoutError", "whole-job", "build", 1)]
        got = _stored("split")
        assert got == {
            "calls": [("gpt-4.1", "split-job", True)],
            "external": [("github", "split-job")],
            "errors": [("TimeoutError", "split-job", "build", 1)],
        }
        assert Job.objects.filter(run__run_id="split").count() == 1


def test_each_run_of_a_trace_gets_its_own_calls(alpha):
    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("nightly batch"):
        _run(tracer, "first", step="plan")
        _run(tracer, "second", step="test")
    post_spans(alpha.host, key, list(exporter.get_finished_spans()))
    with schema_context(alpha.schema):
        assert _stored("first")["calls"] == [("gpt-4.1", "first-job", True)]
        assert _stored("second")["calls"] == [("gpt-4.1", "second-job", True)]
        assert _stored("first")["external"] == [("github", "first-job")]


def test_a_jobs_call_waits_for_its_run_when_the_resource_names_the_project(alpha):
    """With ``run.project_id`` on the resource, a call in a job was stored at once outside any
    run, and never joined the run whose span came later."""
    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer({"service.name": "factory", "run.project_id": "web"})
    _run(tracer, "late")
    spans = list(exporter.get_finished_spans())
    post_spans(alpha.host, key, [s for s in spans if s.name != "factory.run.execute"])
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()
    post_spans(alpha.host, key, _by_name(spans, "factory.run.execute"))
    with schema_context(alpha.schema):
        assert _stored("late")["calls"] == [("gpt-4.1", "late-job", True)]


def test_a_local_agents_usage_is_its_model_calls_once(alpha):
    """An invoke_agent span (INTERNAL: a local agent) carries the total of the chat spans under
    it: counting both doubled the run's tokens and cost (an OpenTelemetry review found it). A
    remote agent (CLIENT: its model calls are out of sight) is counted."""
    from opentelemetry.trace import SpanKind

    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer()
    agent_usage = {**CHAT, "gen_ai.operation.name": "invoke_agent"}
    for run_id, kind in (("local", SpanKind.INTERNAL), ("remote", SpanKind.CLIENT)):
        run = tracer.start_as_current_span(
            "factory.run.execute", attributes={"run.id": run_id, "run.project_id": "web"}
        )
        with (
            run,
            tracer.start_as_current_span("invoke_agent coder", kind=kind, attributes=agent_usage),
        ):
            if kind == SpanKind.INTERNAL:
                with tracer.start_as_current_span("chat gpt-4.1", attributes=CHAT):
                    pass
    post_spans(alpha.host, key, list(exporter.get_finished_spans()))
    with schema_context(alpha.schema):
        for run_id in ("local", "remote"):
            calls = LlmUsageEvent.objects.filter(run__run_id=run_id)
            assert [(c.input_tokens, c.output_tokens) for c in calls] == [(1_000, 100)], run_id


def test_an_external_call_with_token_usage_is_an_llm_call(alpha):
    """``factory.external.anthropic`` with gen_ai usage was stored as an external call alone:
    its tokens and cost were dropped (an OpenTelemetry review found it)."""
    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer()
    run = tracer.start_as_current_span(
        "factory.run.execute", attributes={"run.id": "ext", "run.project_id": "web"}
    )
    with run, tracer.start_as_current_span("factory.external.openai", attributes=CHAT):
        pass
    post_spans(alpha.host, key, list(exporter.get_finished_spans()))
    with schema_context(alpha.schema):
        [call] = LlmUsageEvent.objects.filter(run__run_id="ext")
        assert (call.model, call.input_tokens, call.cost > 0) == ("gpt-4.1", 1_000, True)


def test_an_external_call_enclosing_its_own_model_call_is_counted_once(alpha):
    """An instrumented client's chat span under the factory's external span carries the usage
    too: counting both doubled it; and an external span with usage but no model was rejected,
    losing the external call (the final review found both)."""
    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer()
    run = tracer.start_as_current_span(
        "factory.run.execute", attributes={"run.id": "wrapped", "run.project_id": "web"}
    )
    external = tracer.start_as_current_span("factory.external.openai", attributes=CHAT)
    with run, external, tracer.start_as_current_span("chat gpt-4.1", attributes=CHAT):
        pass
    no_model = {k: v for k, v in CHAT.items() if k != "gen_ai.request.model"}
    run = tracer.start_as_current_span(
        "factory.run.execute", attributes={"run.id": "nameless", "run.project_id": "web"}
    )
    with run, tracer.start_as_current_span("factory.external.vendor", attributes=no_model):
        pass
    answer = parse_response(post_spans(alpha.host, key, list(exporter.get_finished_spans())))
    assert answer.partial_success.rejected_spans == 0
    with schema_context(alpha.schema):
        calls = LlmUsageEvent.objects.filter(run__run_id="wrapped")
        assert [(c.input_tokens, c.output_tokens) for c in calls] == [(1_000, 100)]
        assert _stored("wrapped")["external"] == [("openai", None)]
        assert _stored("nameless")["external"] == [("vendor", None)]
        assert not LlmUsageEvent.objects.filter(run__run_id="nameless").exists()


def test_a_call_sent_before_the_tool_span_between_it_and_its_job(alpha):
    """The batch boundary fell between the chat span and the tool span enclosing it: the call
    kept no job, its error no step (the final review): the job span lists the spans under it
    that are no record, and the call finds its job through the tool's."""
    _, key = key_for(alpha, ["ingest"])
    tracer, exporter = _tracer()
    _run(tracer, "deep", failing_call=True)
    spans = list(exporter.get_finished_spans())
    for part in (
        _by_name(spans, "chat gpt-4.1"),
        _by_name(spans, "tool: edit files", "factory.external.github", "factory.job.execute"),
        _by_name(spans, "factory.run.execute"),
    ):
        assert parse_response(post_spans(alpha.host, key, part)).partial_success.rejected_spans == 0
    with schema_context(alpha.schema):
        assert _stored("deep") == {
            "calls": [("gpt-4.1", "deep-job", True)],
            "external": [("github", "deep-job")],
            "errors": [("TimeoutError", "deep-job", "build", 1)],
        }
