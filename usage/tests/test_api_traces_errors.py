"""POST /v1/traces keeps the errors spans report: with their run, job attempt and step, grouped
by fingerprint, once per span event, through the parking path and the platform key."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts.services import api_key_create
from tests.support import bearer, host_client, key_for
from usage.models import ErrorGroup, ExternalCall, Job, LlmUsageEvent, Run, SpanError
from usage.selectors.run_trace import run_calls
from usage.tests.otlp_spans import failing_run_spans
from usage.tests.test_api_traces import parse_response, post_spans
from usage.trace_routing.models import PendingSpan

pytestmark = pytest.mark.django_db


def _errors(schema):
    with schema_context(schema):
        return list(SpanError.objects.select_related("run", "job").order_by("attempt", "type"))


def test_errors_are_stored_with_their_run_job_attempt_and_step(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = post_spans(alpha.host, key, failing_run_spans())
    assert parse_response(response).partial_success.rejected_spans == 0
    errors = _errors(alpha.schema)
    assert [(e.type, e.source, e.step_name, e.attempt, e.span_name) for e in errors] == [
        ("usage.tests.otlp_spans.DeployConflict", "exception", "deploy", 1, "factory.job.execute"),
        ("GitError", "exception", "deploy", 2, "git.push"),
        ("RateLimitError", "status", "deploy", 2, "chat gpt-4.1"),
        ("java.lang.IllegalStateException", "exception", "deploy", 2, "factory.external.billing"),
    ]
    assert {e.run.run_id for e in errors} == {"run-err-1"}
    assert [(e.job.job_id, e.job.attempt) for e in errors] == [("deploy", 1)] + [("deploy", 2)] * 3
    assert {(e.template, e.run_type) for e in errors} == {
        ("python-fastapi-service", "microservice")
    }
    deploy = errors[0]
    assert deploy.top_frame == "_deploy (tests/otlp_spans.py)"
    assert "Traceback (most recent call last)" in deploy.stacktrace
    java = errors[3]
    assert java.top_frame == "com.acme.billing.OrderService.load (OrderService.java)"
    with schema_context(alpha.schema):
        group = ErrorGroup.objects.get(fingerprint=deploy.fingerprint)
        assert group.occurrences == 1 and group.first_seen == deploy.occurred_at
        assert group.message == "manifest <str> conflicts with revision <n>"
        # The LLM call is its usage event, timing included; the run's calls show its error.
        event = LlmUsageEvent.objects.get()
        assert not ExternalCall.objects.filter(kind="llm").exists()
        (call,) = [c for c in run_calls(event.run) if c.kind == "llm"]
        assert (call.service, call.model, call.status) == ("openai", "gpt-4.1", "error")
        (first,) = SpanError.objects.filter(span_id=call.span_id, seq=0)
        assert call.error == (first.type or first.message)[:500] and call.error


def test_resending_protobuf_then_json_stores_each_error_once(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = failing_run_spans()
    post_spans(alpha.host, key, spans)
    post_spans(alpha.host, key, spans, as_json=True)
    with schema_context(alpha.schema):
        assert SpanError.objects.count() == 4
        assert sorted(ErrorGroup.objects.values_list("occurrences", flat=True)) == [1, 1, 1, 1]


def test_the_same_error_in_two_runs_is_one_group(alpha):
    _, key = key_for(alpha, ["ingest"])
    post_spans(alpha.host, key, failing_run_spans(run_id="r-1", manifest="a-1.yaml"))
    post_spans(alpha.host, key, failing_run_spans(run_id="r-2", manifest="b-22.yaml"))
    with schema_context(alpha.schema):
        assert SpanError.objects.count() == 8
        assert ErrorGroup.objects.count() == 4
        assert set(ErrorGroup.objects.values_list("occurrences", flat=True)) == {2}


def test_errors_waiting_for_their_run_span_are_stored_when_it_arrives(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = failing_run_spans(run_id="late")
    run_span = [s for s in spans if s.name == "factory.run.execute"]
    children = [s for s in spans if s.name != "factory.run.execute"]
    post_spans(alpha.host, key, children)
    assert PendingSpan.objects.count() == len(children)
    assert _errors(alpha.schema) == []
    post_spans(alpha.host, key, run_span)
    assert PendingSpan.objects.count() == 0
    errors = _errors(alpha.schema)
    assert len(errors) == 4 and {e.run.run_id for e in errors} == {"late"}
    assert {e.template for e in errors} == {"python-fastapi-service"}


def test_errors_stored_before_their_run_span_learn_its_template(alpha):
    _, key = key_for(alpha, ["ingest"])
    spans = failing_run_spans(run_id="early")
    job = next(s for s in spans if s.name == "factory.job.execute" and s.events)
    # The job names its run and project itself: stored at once, on a stub run.
    job._attributes = {**job.attributes, "run.id": "early", "run.project_id": "checkout"}
    post_spans(alpha.host, key, [job])
    assert [(e.run.run_id, e.template) for e in _errors(alpha.schema)] == [("early", "")]
    post_spans(alpha.host, key, [s for s in spans if s.name == "factory.run.execute"])
    assert [e.template for e in _errors(alpha.schema)] == ["python-fastapi-service"]


def test_platform_key_routes_errors_to_their_tenant(public_host, alpha, beta):
    with schema_context("public"):
        _, key = api_key_create(name="factory", scopes=["ingest"])
    spans = failing_run_spans(run_id="a-run", tenant="alpha") + failing_run_spans(
        run_id="b-run", tenant="beta"
    )
    assert parse_response(post_spans(public_host, key, spans)).partial_success.rejected_spans == 0
    assert {e.run.run_id for e in _errors(alpha.schema)} == {"a-run"}
    assert {e.run.run_id for e in _errors(beta.schema)} == {"b-run"}
    with schema_context(beta.schema):
        assert ErrorGroup.objects.count() == 4
        assert Job.objects.filter(run=Run.objects.get(run_id="b-run")).count() == 2


def test_the_run_api_tells_llm_calls_from_external_calls(alpha):
    _, key = key_for(alpha, ["ingest", "read"])
    post_spans(alpha.host, key, failing_run_spans())
    answer = host_client(alpha.host).get("/api/v1/runs/run-err-1", **bearer(key)).json()
    calls = {(c["kind"], c["service"], c["model"], c["status"]) for c in answer["external_calls"]}
    assert calls == {("external", "billing", "", "error"), ("llm", "openai", "gpt-4.1", "error")}
