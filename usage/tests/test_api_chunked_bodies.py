"""Bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length), as a proxy or an
exporter streaming its body does: read up to the endpoint's limit from the server's stream
(gunicorn ends a chunked stream itself and says so with ``wsgi.input_terminated``), refused with
411 where the server does not, and with 413 beyond the limit. Django reads a body by its
Content-Length only: a review found a chunked OTLP export answered 200 and stored nothing.

Through the test client's WSGI handler with the environ a server gives (the test client itself
always sets a Content-Length, and its payload refuses to be read past it)."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.test import RequestFactory
from django.test.client import ClientHandler
from django_tenants.utils import schema_context

from tests.support import key_for
from usage.models import LlmUsageEvent, Run
from usage.tests.otlp_spans import as_request, factory_run_spans

pytestmark = pytest.mark.django_db


def post_chunked(
    host: str,
    key: str,
    path: str,
    body: bytes,
    content_type: str,
    *,
    terminated: bool = True,
    **extra,
) -> tuple[int, bytes]:
    environ = RequestFactory()._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="POST",
        CONTENT_TYPE=content_type,
        HTTP_HOST=host,
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_TRANSFER_ENCODING="chunked",
        **extra,
    )
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(body)
    if terminated:
        environ["wsgi.input_terminated"] = True
    response = ClientHandler()(environ)  # Django's WSGI handling, as the test client runs it
    return response.status_code, response.content


def test_a_chunked_trace_export_is_stored(alpha):
    _, key = key_for(alpha, ["ingest"])
    body = gzip.compress(as_request(factory_run_spans()).SerializeToString())
    status, content = post_chunked(
        alpha.host, key, "/v1/traces", body, "application/x-protobuf", HTTP_CONTENT_ENCODING="gzip"
    )
    assert status == 200, content[:300]
    with schema_context(alpha.schema):
        run = Run.objects.get(run_id="run-otel-1")
        assert LlmUsageEvent.objects.filter(run=run).count() == 3


def test_a_chunked_event_batch_is_stored(alpha):
    _, key = key_for(alpha, ["ingest"])
    event = {
        "type": "llm",
        "event_id": "chunked-1",
        "timestamp": "2026-11-02T10:00:00Z",
        "project": "web",
        "provider": "openai",
        "model": "gpt-4.1",
        "input_tokens": 100,
        "output_tokens": 10,
    }
    body = json.dumps({"events": [event]}).encode()
    status, content = post_chunked(alpha.host, key, "/api/v1/events", body, "application/json")
    assert status == 200, content[:300]
    assert json.loads(content)["accepted"] == 1
    with schema_context(alpha.schema):
        assert LlmUsageEvent.objects.filter(event_id="chunked-1").exists()


def test_a_chunked_body_past_the_limit_is_413_and_stores_nothing(alpha, settings):
    _, key = key_for(alpha, ["ingest"])
    body = as_request(factory_run_spans()).SerializeToString()
    settings.INGEST_MAX_BODY_BYTES = len(body) - 1
    status, content = post_chunked(alpha.host, key, "/v1/traces", body, "application/x-protobuf")
    assert status == 413, content[:300]
    assert json.loads(content)["status"] == 413
    with schema_context(alpha.schema):
        assert not Run.objects.exists()


def test_a_chunked_body_the_server_does_not_end_is_411(alpha):
    _, key = key_for(alpha, ["ingest"])
    status, content = post_chunked(
        alpha.host, key, "/api/v1/events", b'{"events": []}', "application/json", terminated=False
    )
    assert status == 411, content[:300]
    assert "Content-Length" in json.loads(content)["detail"]
