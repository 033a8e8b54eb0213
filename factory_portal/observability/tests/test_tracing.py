"""Tracing in the process: request, database and outbound HTTP spans with the tenant, one trace
per request, logs that name the trace, and nothing at all when tracing is off."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from factory_portal.observability import tracing
from factory_portal.observability.masking import url_origin_only
from tests.support import host_client, logged_in_client


def test_a_tenant_request_is_one_trace_with_its_database_spans_all_marked_with_the_tenant(
    spans, alpha, json_logs
):
    client = logged_in_client(alpha.host, alpha.admin_email)
    spans.clear()
    response = client.get("/runs/")
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.attributes["tenant.id"] == "alpha"
    assert server.attributes["http.route"] == "runs/"
    queries = [s for s in finished if s.attributes.get("db.system") == "postgresql"]
    assert queries, "database calls must be traced"
    assert {s.context.trace_id for s in finished} == {server.context.trace_id}
    # Only the lookup that finds the tenant from the host runs before the tenant is known.
    routing = [s for s in queries if 'search_path = "public"' in s.attributes["db.statement"]]
    routing += [s for s in queries if "tenants_domain" in s.attributes["db.statement"]]
    assert len(routing) == 2 and all("tenant.id" not in s.attributes for s in routing)
    tenant_queries = [s for s in queries if s not in routing]
    assert any('"usage_run"' in s.attributes["db.statement"] for s in tenant_queries)
    assert {s.attributes.get("tenant.id") for s in tenant_queries} == {"alpha"}
    # Without a client id, the request id is the trace id; the response says which.
    trace_id = format(server.context.trace_id, "032x")
    assert response["X-Request-ID"] == trace_id
    (access,) = [r for r in json_logs.records() if r["message"] == "GET /runs/ 200"]
    assert access["trace_id"] == trace_id and access["request_id"] == trace_id
    assert access["tenant_id"] == "alpha" and len(access["span_id"]) == 16


def test_invitation_tokens_never_reach_the_exported_spans(spans, alpha, invitation):
    spans.clear()
    client = host_client(alpha.host)
    assert client.get(f"{invitation.path}?token={invitation.token}").status_code == 302
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    exported = server.to_json()
    assert invitation.token not in exported and f"/{invitation.uidb64}/" not in exported
    assert server.attributes["http.url"] == (
        "http://alpha.localhost/invite/[redacted]/[redacted]/?token=[redacted]"
    )
    assert server.attributes["http.route"] == "invite/<uidb64>/<token>/"
    assert server.name == "GET invite/<uidb64>/<token>/"


def test_the_span_mask_covers_the_stable_url_attributes_and_the_name():
    """Whichever semantic conventions an instrumentation follows (``OTEL_SEMCONV_STABILITY_OPT_IN``
    switches Django's to ``url.full``/``url.path``/``url.query``), every text attribute and the
    name are masked."""
    exporter = InMemorySpanExporter()
    provider = tracing.provider_build()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    path = "/invite/MQ/cz9a1b-0f1e2d3c4b5a69788796a5b4c3d2e1f0/"
    attributes = {
        "url.full": f"https://alpha.example{path}?x=1",
        "url.path": path,
        "url.query": "token=abcdef123456&x=1",
        "http.target": path,
        "http.status_code": 200,
    }
    with provider.get_tracer("test").start_as_current_span(f"GET {path}", attributes=attributes):
        tracing.span_secrets_mask(trace.get_current_span())
    (span,) = exporter.get_finished_spans()
    assert "cz9a1b" not in span.to_json() and "abcdef123456" not in span.to_json()
    assert span.attributes["url.path"] == "/invite/[redacted]/[redacted]/"
    assert span.attributes["url.query"] == "token=[redacted]&x=1"
    assert span.attributes["http.status_code"] == 200
    assert span.name == "GET /invite/[redacted]/[redacted]/"
    provider.shutdown()


def test_public_requests_have_no_tenant_and_probes_are_not_traced(spans):
    from tests.support import host_client

    client = host_client("localhost")
    client.get("/login/")
    client.get("/healthz")
    client.get("/metrics")
    finished = spans.get_finished_spans()
    servers = [s for s in finished if s.kind is SpanKind.SERVER]
    assert [s.attributes["http.route"] for s in servers] == ["login/"]
    assert all("tenant.id" not in s.attributes for s in finished)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://hooks.example/services/T0/B0/xyz", "https://hooks.example/[redacted]"),
        ("https://user:pw@hooks.example:8443/?token=1", "https://hooks.example:8443/[redacted]"),
        ("https://hooks.example/", "https://hooks.example/"),
        ("http://[::1]:9000/a", "http://[::1]:9000/[redacted]"),
        ("not a url", "[redacted]"),
        ("http://[::1/a", "[redacted]"),
    ],
)
def test_outbound_urls_keep_only_their_origin(url, kept):
    assert url_origin_only(url) == kept


def test_tracing_stays_off_without_an_endpoint(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.tracing_configure() is False
    assert not DjangoInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.parametrize(
    ("variables", "enabled"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({}, False),
    ],
)
def test_which_environments_turn_tracing_on(monkeypatch, variables, enabled):
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert tracing.tracing_enabled_by_env() is enabled


def test_the_default_sampler_is_parent_based_trace_id_ratio(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    description = tracing.provider_build().sampler.get_description()
    assert description.startswith("ParentBased{root:TraceIdRatioBased{0.25}")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "seven")
    assert "TraceIdRatioBased{1.0}" in tracing.provider_build().sampler.get_description()
