"""Tracing configured from the environment, as a deployed process would be: a fresh Python
process sets Django up with ``OTEL_*`` variables, answers one request, and its spans reach a
local OTLP/HTTP receiver (or don't, when tracing is off or sampled out). A dead collector costs
the request nothing and leaves a warning in the logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[3]
PROBE = """
import json, sys
import django
django.setup()
from django.test import Client
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor

response = Client(HTTP_HOST=sys.argv[1]).get("/login/")
provider = trace.get_tracer_provider()
if hasattr(provider, "force_flush"):
    provider.force_flush(5000)
print(json.dumps({
    "status": response.status_code,
    "request_id": response["X-Request-ID"],
    "instrumented": DjangoInstrumentor().is_instrumented_by_opentelemetry,
}))
"""


class Collector:
    """A local OTLP/HTTP trace receiver."""

    def __init__(self) -> None:
        self.exports: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                outer.exports.append((self.path, dict(self.headers), message))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list:
        return [
            (resource.resource, span)
            for _, _, message in self.exports
            for resource in message.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
def collector():  # type: ignore[no-untyped-def]
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()


def _probe(alpha_host: str, **variables: str) -> tuple[dict[str, object], str]:
    settings = connection.settings_dict
    host = quote(settings["HOST"] or "127.0.0.1", safe="")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OTEL_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        DATABASE_URL=f"postgres://{settings['USER']}@{host}:{settings['PORT'] or 5432}/"
        f"{settings['NAME']}",
        DJANGO_SETTINGS_MODULE="factory_portal.settings",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_EXPORTER_OTLP_TIMEOUT="2",
        **variables,
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", PROBE, alpha_host],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_spans_reach_the_collector_named_in_the_environment(alpha, collector):
    answer, _ = _probe(
        alpha.host,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_EXPORTER_OTLP_HEADERS="x-collector-token=abc123",
        OTEL_SERVICE_NAME="portal-under-test",
    )
    assert answer["status"] == 200 and answer["instrumented"] is True
    path, headers, _ = collector.exports[0]
    assert path == "/v1/traces" and headers["x-collector-token"] == "abc123"
    spans = collector.spans()
    (server,) = [span for _, span in spans if span.kind == span.SPAN_KIND_SERVER]
    assert server.trace_id.hex() == answer["request_id"]
    assert {a.key: a.value.string_value for a in server.attributes}["tenant.id"] == "alpha"
    resource, _ = spans[0]
    names = {a.key: a.value.string_value for a in resource.attributes}
    assert names["service.name"] == "portal-under-test"
    assert any(
        {a.key: a.value.string_value for a in span.attributes}.get("db.system") == "postgresql"
        for _, span in spans
    )


def test_a_zero_sampling_ratio_exports_nothing(alpha, collector):
    answer, _ = _probe(
        alpha.host, OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_TRACES_SAMPLER_ARG="0"
    )
    assert answer["status"] == 200 and answer["instrumented"] is True
    assert collector.spans() == []


def test_without_an_endpoint_nothing_is_instrumented_or_exported(alpha, collector):
    answer, _ = _probe(alpha.host)
    assert answer["status"] == 200 and answer["instrumented"] is False
    assert collector.exports == []


def test_a_dead_collector_fails_no_request_and_is_logged(alpha):
    answer, stderr = _probe(
        alpha.host, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}"
    )
    assert answer["status"] == 200
    warnings = [
        json.loads(line)
        for line in stderr.splitlines()
        if line.startswith("{") and json.loads(line)["logger"].startswith("opentelemetry")
    ]
    assert warnings and {w["level"] for w in warnings} <= {"WARNING", "ERROR"}
