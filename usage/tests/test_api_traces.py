"""POST /v1/traces: the OTLP receiver stores runs, jobs, priced LLM calls and external calls."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from factory_portal.accounts.services import api_key_create
from tests.support import bearer, host_client, key_for
from usage.models import CostSource, ExternalCall, Job, LlmUsageEvent, Run
from usage.selectors.run_trace import run_calls
from usage.tests.otlp_spans import as_otlp_json, as_request, factory_run_spans
from usage.trace_routing.models import PendingSpan, TraceRoute

pytestmark = pytest.mark.django_db


def post_spans(host, key, spans, *, gzip_body=False, as_json=False):
    message = as_request(spans)
    body = message.SerializeToString()
    content_type = "application/x-protobuf"
    if as_json:
        body, content_type = as_otlp_json(message), "application/json"
    headers = {"HTTP_CONTENT_ENCODING": "gzip"} if gzip_body else {}
    return host_client(host).post(
        "/v1/traces",
        data=gzip.compress(body) if gzip_body else body,
        content_type=content_type,
        **bearer(key),
        **headers,
    )


def parse_response(response) -> ExportTraceServiceResponse:
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    return answer


def test_a_run_trace_is_stored(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = post_spans(alpha.host, key, factory_run_spans(), gzip_body=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    assert parse_response(response).partial_success.rejected_spans == 0
    with schema_context(alpha.schema):
        run = Run.objects.get(run_id="run-otel-1")
        jobs = list(Job.objects.filter(run=run).order_by("attempt"))
        calls = list(LlmUsageEvent.objects.filter(run=run).order_by("model"))
        external = ExternalCall.objects.get(kind="external")
        assert not ExternalCall.objects.filter(kind="llm").exists()  # stored once: the event
        llm_calls = sorted((c for c in run_calls(run) if c.kind == "llm"), key=lambda c: c.model)
    assert run.status == "Succeeded"
    assert len(run.trace_id) == 32 and run.trace_id == calls[0].event_id.split("-")[1]
    assert run.template_recipe_id == "python-fastapi-service" and run.run_type == "microservice"
    assert [(j.attempt, j.status) for j in jobs] == [(1, "Failed"), (2, "Succeeded")]
    assert [c.model for c in calls] == ["claude-sonnet-4-5-20250929", "gemini-2.5-flash", "gpt-4.1"]
    assert all(c.cost_source == CostSource.PRICE_BOOK and c.cost > 0 for c in calls)
    assert calls[0].cost == Decimal("0.0345000000")
    assert calls[0].job_id == jobs[1].id  # the attempt it ran in
    assert (external.service, external.status, external.job_id) == ("github", "ok", jobs[1].id)
    # An LLM call's event keeps its timing too, for the run's waterfall: it started its
    # duration before it ended, and its span id is the span's.
    assert [(c.service, c.model, c.job_id, c.status) for c in llm_calls] == [
        ("anthropic", "claude-sonnet-4-5-20250929", jobs[1].id, "ok"),
        ("google", "gemini-2.5-flash", jobs[1].id, "ok"),
        ("openai", "gpt-4.1", jobs[1].id, "ok"),
    ]
    for call, event in zip(llm_calls, calls, strict=True):
        assert event.duration_ms is not None and event.duration_ms >= 0
        assert call.duration_ms == event.duration_ms
        assert call.started_at == event.occurred_at - timedelta(milliseconds=event.duration_ms)
        assert event.event_id.endswith(f"-{call.span_id}") and len(call.span_id) == 16


def test_resending_a_trace_changes_nothing(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = factory_run_spans()
    post_spans(alpha.host, key, spans)
    post_spans(alpha.host, key, spans, as_json=True)
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.count() == 3
        assert Job.objects.count() == 2
        assert ExternalCall.objects.filter(kind="external").count() == 1
        assert LlmUsageEvent.objects.filter(duration_ms__isnull=False).count() == 3
        assert not ExternalCall.objects.filter(kind="llm").exists()


def test_json_request_gets_a_json_answer(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = post_spans(alpha.host, key, factory_run_spans(), as_json=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}


def test_spans_before_their_run_span_wait_and_are_stored_when_it_arrives(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = factory_run_spans(run_id="late-run")
    run_span = [s for s in spans if s.name == "factory.run.execute"]
    children = [s for s in spans if s.name != "factory.run.execute"]
    assert parse_response(post_spans(alpha.host, key, children)).partial_success.rejected_spans == 0
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()
    assert PendingSpan.objects.count() == len(children)
    post_spans(alpha.host, key, run_span)
    assert PendingSpan.objects.count() == 0
    with schema_context(alpha.schema):
        run = Run.objects.get(run_id="late-run")
        assert LlmUsageEvent.objects.filter(run=run).count() == 3
        assert Job.objects.filter(run=run).count() == 2
    # A span of the same trace arriving later still finds its run through the trace route.
    assert TraceRoute.objects.get(trace_id=run.trace_id).run_id == "late-run"


def test_span_naming_another_tenant_is_rejected(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = post_spans(alpha.host, key, factory_run_spans(tenant="beta"))
    answer = parse_response(response)
    assert answer.partial_success.rejected_spans == 7  # the run span names beta, for its trace
    assert "names tenant 'beta'" in answer.partial_success.error_message


def test_platform_key_routes_spans_by_run_tenant_id(public_host, alpha, beta):
    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    spans = (
        factory_run_spans(run_id="a-run", tenant="alpha")
        + factory_run_spans(run_id="b-run", tenant="beta")
        + factory_run_spans(run_id="x-run", tenant="nobody")
    )
    answer = parse_response(post_spans(public_host, key, spans))
    assert answer.partial_success.rejected_spans == 7  # every span of the unknown tenant's trace
    assert "unknown or inactive tenant 'nobody'" in answer.partial_success.error_message
    with schema_context(alpha.schema):
        assert list(Run.objects.values_list("run_id", flat=True)) == ["a-run"]
    with schema_context(beta.schema):
        assert list(Run.objects.values_list("run_id", flat=True)) == ["b-run"]
        assert LlmUsageEvent.objects.count() == 3


def test_platform_spans_of_more_tenants_than_a_request_stores_are_rejected(
    public_host, alpha, beta, settings
):
    settings.PLATFORM_MAX_TENANTS_PER_REQUEST = 1
    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    spans = factory_run_spans(run_id="a-run", tenant="alpha") + factory_run_spans(
        run_id="b-run", tenant="beta"
    )
    answer = parse_response(post_spans(public_host, key, spans))
    assert answer.partial_success.rejected_spans == 7  # beta's (the second in slug order)
    assert "one platform request stores at most 1" in answer.partial_success.error_message
    with schema_context(alpha.schema):
        assert list(Run.objects.values_list("run_id", flat=True)) == ["a-run"]
    with schema_context(beta.schema):
        assert not Run.objects.exists()


def test_other_tenants_key_gets_401(alpha, beta):
    _, key = key_for(alpha, ["ingest"])
    assert post_spans(beta.host, key, factory_run_spans()).status_code == 401


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [(b"\x00garbage", "application/x-protobuf", 400), (b"{}", "text/plain", 415)],
)
def test_bad_bodies_get_4xx(alpha, body, content_type, status):
    _, key = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/v1/traces", data=body, content_type=content_type, **bearer(key)
    )
    assert response.status_code == status


# --- trace ids per tenant (issue 13, item 7) ------------------------------------------------------


def _llm_costs(tenant, run_id):
    with schema_context(tenant.schema):
        run = Run.objects.get(run_id=run_id)
        return run.trace_id, sorted(
            LlmUsageEvent.objects.filter(run=run).values_list("model", "cost")
        )


def test_two_tenants_may_use_the_same_trace_id(alpha, beta):
    """Trace ids are the sender's choice: a tenant that used one first does not own it for the
    platform. Each tenant gets its own run and priced calls, also when the children arrive
    before the run span."""
    _, alpha_key = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["ingest"])
    spans = factory_run_spans(run_id="shared-trace", tenant=None)  # same spans, same trace id
    run_span = [s for s in spans if s.name == "factory.run.execute"]
    children = [s for s in spans if s.name != "factory.run.execute"]

    assert (
        parse_response(post_spans(alpha.host, alpha_key, spans)).partial_success.rejected_spans == 0
    )
    for part in (children, run_span):  # beta: children first, kept until the run span
        answer = parse_response(post_spans(beta.host, beta_key, part))
        assert answer.partial_success.rejected_spans == 0, answer.partial_success.error_message

    alpha_trace, alpha_calls = _llm_costs(alpha, "shared-trace")
    beta_trace, beta_calls = _llm_costs(beta, "shared-trace")
    assert alpha_trace == beta_trace
    assert len(alpha_calls) == 3 and alpha_calls == beta_calls
    assert all(cost > 0 for _, cost in beta_calls)
    assert set(
        TraceRoute.objects.filter(trace_id=alpha_trace).values_list("tenant__slug", flat=True)
    ) == {"alpha", "beta"}
    assert not PendingSpan.objects.exists()


def test_a_tenants_waiting_spans_are_not_taken_by_another_tenants_run_span(alpha, beta):
    _, alpha_key = key_for(alpha, ["ingest"])
    _, beta_key = key_for(beta, ["ingest"])
    spans = factory_run_spans(run_id="r", tenant=None)
    children = [s for s in spans if s.name != "factory.run.execute"]
    post_spans(alpha.host, alpha_key, children)
    post_spans(beta.host, beta_key, spans)  # beta's run span of the same trace id
    assert PendingSpan.objects.filter(tenant_hint="alpha").count() == len(children)
    with schema_context(alpha.schema):
        assert not LlmUsageEvent.objects.exists()


def test_platform_key_keeps_two_tenants_traces_with_one_id_apart(public_host, alpha, beta):
    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    a_spans = factory_run_spans(run_id="a-run", tenant="alpha")
    trace_id = format(a_spans[0].context.trace_id, "032x")
    b_spans = [_with_tenant(s, "beta") for s in a_spans]  # the same trace, beta's run
    for part in (a_spans, b_spans):
        assert (
            parse_response(post_spans(public_host, key, part)).partial_success.rejected_spans == 0
        )
    assert _llm_costs(alpha, "a-run")[0] == _llm_costs(beta, "a-run")[0] == trace_id
    # A later span of that trace that names no tenant cannot be routed: it says so.
    late = [s for s in factory_run_spans(tenant=None) if s.name.startswith("chat gpt")]
    late = [_in_trace(late[0], a_spans[0].context.trace_id)]
    answer = parse_response(post_spans(public_host, key, late))
    assert answer.partial_success.rejected_spans == 1
    assert "used by several tenants" in answer.partial_success.error_message


def _with_tenant(span, tenant):
    attributes = dict(span.attributes)
    if "run.tenant_id" in attributes:
        attributes["run.tenant_id"] = tenant
    return _copy(span, attributes=attributes)


def _in_trace(span, trace_id):
    from opentelemetry.trace import SpanContext

    return _copy(
        span, context=SpanContext(trace_id, span.context.span_id, is_remote=False), parent=None
    )


def _copy(span, **changes):
    """The same exported span with some fields changed (ReadableSpan is immutable)."""
    from opentelemetry.sdk.trace import ReadableSpan

    fields = {
        "name": span.name,
        "context": span.context,
        "parent": span.parent,
        "resource": span.resource,
        "attributes": dict(span.attributes),
        "kind": span.kind,
        "status": span.status,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "instrumentation_scope": span.instrumentation_scope,
    }
    return ReadableSpan(**{**fields, **changes})


def test_platform_spans_waiting_for_one_tenant_are_not_taken_by_anothers_run(
    public_host, alpha, beta
):
    """A platform span that names beta (here through its resource) waits for beta's run span;
    alpha's run span of the same trace id must not store it in alpha."""
    from opentelemetry.sdk.resources import Resource

    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    spans = factory_run_spans(tenant=None, resource={"run.tenant_id": "beta"})
    children = [s for s in spans if s.name != "factory.run.execute"]
    [run_span] = [s for s in spans if s.name == "factory.run.execute"]
    post_spans(public_host, key, children)
    assert PendingSpan.objects.count() == len(children)

    alpha_run = _copy(
        run_span,
        attributes={**run_span.attributes, "run.tenant_id": "alpha"},
        resource=Resource.create({}),
    )
    assert (
        parse_response(post_spans(public_host, key, [alpha_run])).partial_success.rejected_spans
        == 0
    )
    with schema_context(alpha.schema):
        assert Run.objects.count() == 1 and not LlmUsageEvent.objects.exists()
    assert PendingSpan.objects.count() == len(children)

    post_spans(public_host, key, [run_span])  # beta's run span (tenant from the resource)
    assert not PendingSpan.objects.exists()
    with schema_context(beta.schema):
        assert LlmUsageEvent.objects.count() == 3


# --- limits (issue 13, item 10) -------------------------------------------------------------------


def test_more_spans_than_allowed_is_a_413_problem(alpha, settings):
    settings.OTLP_MAX_SPANS_PER_REQUEST = 5
    _, key = key_for(alpha, ["ingest"])
    for as_json in (False, True):
        response = post_spans(alpha.host, key, factory_run_spans(), as_json=as_json)
        assert response.status_code == 413
        assert response["Content-Type"] == "application/problem+json"
        assert "At most 5 spans per request" in response.json()["detail"]
    with schema_context(alpha.schema):
        assert not Run.objects.exists()


def test_waiting_spans_are_bounded_per_sender(alpha, beta, settings):
    settings.OTLP_MAX_PARKED_SPANS = 4
    _, key = key_for(alpha, ["ingest"])
    children = [s for s in factory_run_spans() if s.name != "factory.run.execute"]
    assert len(children) == 6
    answer = parse_response(post_spans(alpha.host, key, children))
    assert answer.partial_success.rejected_spans == 2
    assert "already wait for their run span (limit 4)" in answer.partial_success.error_message
    assert PendingSpan.objects.filter(tenant_hint="alpha").count() == 4
    # Another sender has its own room.
    _, beta_key = key_for(beta, ["ingest"])
    beta_children = [s for s in factory_run_spans(tenant=None) if s.name != "factory.run.execute"]
    answer = parse_response(post_spans(beta.host, beta_key, beta_children[:4]))
    assert answer.partial_success.rejected_spans == 0


def test_waiting_spans_are_written_in_bulk(alpha, django_assert_max_num_queries):
    """Parking is a few statements whatever the number of spans (it was two per span)."""
    _, key = key_for(alpha, ["ingest"])
    children = []
    for n in range(30):  # 180 spans of 30 traces, none with its run span
        children += [
            s for s in factory_run_spans(run_id=f"r{n}") if s.name != "factory.run.execute"
        ]
    with django_assert_max_num_queries(30):
        answer = parse_response(post_spans(alpha.host, key, children))
    assert answer.partial_success.rejected_spans == 0
    assert PendingSpan.objects.count() == 180


# --- bodies that are not OTLP (issue 13, item 12) ------------------------------------------------


@pytest.mark.parametrize("body", [b"null", b"[]", b"1", b'"x"', b"true"])
def test_json_that_is_not_an_object_is_a_400_problem(alpha, body):
    _, key = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/v1/traces", data=body, content_type="application/json", **bearer(key)
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "must be a JSON object" in response.json()["detail"]


def _json_with_ids(trace_id, span_id):
    document = json.loads(as_otlp_json(as_request(factory_run_spans())))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = trace_id, span_id
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("trace_id", "span_id", "message"),
    [
        ("ab" * 20, "cd" * 8, "spans[0].traceId must be 32 hex characters; got 40"),
        ("ab" * 16, "cd" * 9, "spans[0].spanId must be 16 hex characters; got 18"),
        ("ab" * 15, "cd" * 8, "spans[0].traceId must be 32 hex characters; got 30"),
        ("ab" * 16 + "x", "cd" * 8, "is not hex"),
    ],
)
def test_json_ids_of_the_wrong_length_are_a_400_problem(alpha, trace_id, span_id, message):
    _, key = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/v1/traces",
        data=_json_with_ids(trace_id, span_id),
        content_type="application/json",
        **bearer(key),
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert message in response.json()["detail"]
    with schema_context(alpha.schema):
        assert not Run.objects.exists()


def test_protobuf_ids_of_the_wrong_length_are_a_400_problem(alpha):
    _, key = key_for(alpha, ["ingest"])
    message = as_request(factory_run_spans())
    for span in message.resource_spans[0].scope_spans[0].spans:
        span.trace_id = span.trace_id + b"\x01"  # 17 bytes
    response = host_client(alpha.host).post(
        "/v1/traces",
        data=message.SerializeToString(),
        content_type="application/x-protobuf",
        **bearer(key),
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "spans[0].trace_id must be 16 bytes; got 17" in response.json()["detail"]


@pytest.mark.parametrize(
    ("tenant", "project", "reason"),
    [
        ("al\x00pha", "checkout", "unknown or inactive tenant 'al\\x00pha'"),
        ("x" * 5000, "checkout", "unknown or inactive tenant '" + "x" * 64 + "'"),
        ("alpha", "pr\x00j", "project 'pr\\x00j' is not a slug"),
        ("alpha", "p" * 101, "is not a slug (1 to 100 lowercase"),
    ],
)
def test_hostile_tenant_and_project_attributes_are_rejected_spans(
    public_host, alpha, tenant, project, reason
):
    """They were 500s (NUL in a query, a project too long for a trace route)."""
    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    response = post_spans(public_host, key, factory_run_spans(tenant=tenant, project=project))
    answer = parse_response(response)
    assert response.status_code == 200
    assert answer.partial_success.rejected_spans == 7
    assert reason in answer.partial_success.error_message
    assert not TraceRoute.objects.exists() and not PendingSpan.objects.exists()


def test_a_waiting_platform_span_with_a_hostile_project_is_rejected(public_host):
    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    spans = factory_run_spans(tenant=None, resource={"run.project_id": "pr\x00j"})
    children = [s for s in spans if s.name.startswith("factory.job")]  # no run: they would wait
    answer = parse_response(post_spans(public_host, key, children))
    assert answer.partial_success.rejected_spans == len(children)
    assert "is not a slug" in answer.partial_success.error_message
    assert not PendingSpan.objects.exists()


def test_countless_attribute_values_are_a_413_problem(alpha):
    from usage.tests.test_domain_otlp import _field

    span = _field(1, b"t" * 16) + _field(2, b"s" * 8) + _field(9, b"") * 1_000_000
    _, key = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/v1/traces",
        data=gzip.compress(_field(1, _field(2, _field(2, span)))),
        content_type="application/x-protobuf",
        HTTP_CONTENT_ENCODING="gzip",
        **bearer(key),
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Too many attribute values"


def test_llm_spans_past_the_tenants_retention_are_rejected(alpha):
    from datetime import timedelta

    from django.utils import timezone

    from factory_portal.tenants.models import Tenant

    Tenant.objects.filter(pk=alpha.tenant.pk).update(
        raw_retained_from=timezone.now() + timedelta(hours=1)
    )
    _, key = key_for(alpha, ["ingest"])
    response = post_spans(alpha.host, key, factory_run_spans())
    answer = parse_response(response)
    assert response.status_code == 200 and answer.partial_success.rejected_spans == 3
    assert "past retention" in answer.partial_success.error_message
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.count() == 0
        assert Run.objects.filter(run_id="run-otel-1").exists()  # the run itself is kept


def _factory_runs(prefix: str, runs: int, steps: int) -> list:
    """``runs`` traced runs of ``steps`` jobs, each with 3 LLM calls (the benchmark's shape)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for n in range(runs):
        run = {"run.id": f"{prefix}-{n}", "run.project_id": "traced", "run.status": "succeeded"}
        with tracer.start_as_current_span("factory.run.execute", attributes=run):
            for step in range(steps):
                job = {
                    "job.id": f"j{step}",
                    "job.step_name": f"step-{step}",
                    "job.duration_ms": 1500,
                }
                with tracer.start_as_current_span("factory.job.execute", attributes=job):
                    for _ in range(3):
                        with tracer.start_as_current_span(
                            "chat",
                            attributes={
                                "gen_ai.provider.name": "openai",
                                "gen_ai.request.model": "gpt-4.1-mini",
                                "gen_ai.usage.input_tokens": 3000,
                                "gen_ai.usage.output_tokens": 200,
                            },
                        ):
                            pass
    return exporter.get_finished_spans()


def test_statements_per_request_do_not_grow_with_its_runs_steps_and_spans(alpha):
    """Runs, jobs, calls, the step rollup and routes are written set-based: a request of 20
    runs of 6 steps (500 spans) issues as many SQL statements as one of 2 runs of 2 steps (18
    spans), new or re-sent."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, key = key_for(alpha, ["ingest"])
    post_spans(alpha.host, key, _factory_runs("warm", 1, 1))  # the project, first rollup rows
    counts = []
    for prefix, runs, steps in (("small", 2, 2), ("large", 20, 6)):
        spans = _factory_runs(prefix, runs, steps)
        for _ in ("new", "re-sent"):
            with CaptureQueriesContext(connection) as queries:
                response = post_spans(alpha.host, key, spans)
            assert response.status_code == 200
            assert parse_response(response).partial_success.rejected_spans == 0
            counts.append(len(queries))
    small_new, small_again, large_new, large_again = counts
    assert (large_new, large_again) == (small_new, small_again)
    with schema_context(alpha.schema):
        assert Run.objects.filter(run_id__startswith="large-").count() == 20
        assert Job.objects.filter(run__run_id__startswith="large-").count() == 120
        assert LlmUsageEvent.objects.filter(run__run_id__startswith="large-").count() == 360
        assert not ExternalCall.objects.filter(run__run_id__startswith="large-").exists()
