"""POST /v1/traces: the OTLP receiver stores runs, jobs, priced LLM calls and external calls."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from factory_portal.accounts.services import api_key_create
from tests.support import bearer, host_client, key_for
from usage.models import CostSource, ExternalCall, Job, LlmUsageEvent, Run
from usage.platform.models import PendingSpan, TraceRoute
from usage.tests.otlp_spans import as_otlp_json, as_request, factory_run_spans

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
        external = ExternalCall.objects.get()
    assert run.status == "Succeeded"
    assert len(run.trace_id) == 32 and run.trace_id == calls[0].event_id.split("-")[1]
    assert run.template_recipe_id == "python-fastapi-service" and run.run_type == "microservice"
    assert [(j.attempt, j.status) for j in jobs] == [(1, "Failed"), (2, "Succeeded")]
    assert [c.model for c in calls] == ["claude-sonnet-4-5-20250929", "gemini-2.5-flash", "gpt-4.1"]
    assert all(c.cost_source == CostSource.PRICE_BOOK and c.cost > 0 for c in calls)
    assert calls[0].cost == Decimal("0.0345000000")
    assert calls[0].job_id == jobs[1].id  # the attempt it ran in
    assert (external.service, external.status, external.job_id) == ("github", "ok", jobs[1].id)


def test_resending_a_trace_changes_nothing(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = factory_run_spans()
    post_spans(alpha.host, key, spans)
    post_spans(alpha.host, key, spans, as_json=True)
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.count() == 3
        assert Job.objects.count() == 2
        assert ExternalCall.objects.count() == 1


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
