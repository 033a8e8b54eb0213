"""A request that enqueues a Celery task and the task, run by a real worker over Redis, are one
trace: the trace context travels in the message, the task's spans carry the tenant, and the
worker's log lines name the request and the trace.

The request must really commit (tasks are enqueued on commit) and the worker uses its own
database connection, so the scenario runs once per module outside the tests' transactions, in a
tenant created for it and dropped afterwards.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import schema_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from factory_portal.accounts.services import api_key_create
from factory_portal.observability import tracing
from factory_portal.observability.logging import ContextFilter, JsonFormatter
from factory_portal.observability.tests.conftest import LogLines
from factory_portal.tenants.models import Tenant
from factory_portal.tenants.services import tenant_create, tenant_delete, tenant_domain
from tests.support import bearer, host_client, real_worker

pytestmark = pytest.mark.django_db(transaction=False)

SLUG = "trace-check"
TASK = "alerts.tasks.alerts_runs_finished"


@dataclass
class Scenario:
    spans: list[ReadableSpan]
    logs: list[dict[str, object]]
    status: int
    request_id: str
    tasks_counted: float


def _tasks_done() -> float:
    labels = {"task": TASK, "state": "SUCCESS"}
    return REGISTRY.get_sample_value("celery_task_duration_seconds_count", labels) or 0.0


def _post_failed_run(raw_key: str) -> tuple[int, str]:
    now = datetime.now(UTC)
    run = {
        "run_id": "traced-run-1",
        "project": "tracing",
        "status": "Failed",
        "timestamp": now.isoformat(),
        "requested_at": (now - timedelta(minutes=3)).isoformat(),
        "failure_type": "TestFailure",
    }
    response = host_client(tenant_domain(SLUG)).post(
        "/api/v1/runs",
        json.dumps({"runs": [run]}),
        content_type="application/json",
        HTTP_X_REQUEST_ID="client-req-42",
        **bearer(raw_key),
    )
    return response.status_code, response["X-Request-ID"]


@pytest.fixture(scope="module")
def scenario(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = tracing.provider_build()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    logs = LogLines()
    handler = logging.StreamHandler(logs.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    with django_db_blocker.unblock():
        tenant_create(slug=SLUG, name="Trace check", admin_email="admin@trace-check.test")
        try:
            with schema_context(SLUG.replace("-", "_")):
                _, raw = api_key_create(name="trace", scopes=["ingest"])
            tracing.instrument(provider)  # before the worker opens its database connection
            with real_worker(loglevel="INFO"):
                before = _tasks_done()
                # Attached after the worker's start-up, which re-applies the LOGGING settings.
                logging.getLogger().addHandler(handler)
                status, request_id = _post_failed_run(raw)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not (
                    any(s.kind is SpanKind.CONSUMER for s in exporter.get_finished_spans())
                    and _tasks_done() > before
                ):
                    time.sleep(0.1)
                counted = _tasks_done() - before
        finally:
            tracing.uninstrument()
            logging.getLogger().removeHandler(handler)
            tenant_delete(tenant=Tenant.objects.get(slug=SLUG))
    yield Scenario(list(exporter.get_finished_spans()), logs.records(), status, request_id, counted)
    provider.shutdown()


def _one(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    (span,) = [s for s in spans if s.kind is kind]
    return span


def test_request_and_the_task_it_enqueues_share_one_trace(scenario):
    assert scenario.status == 200 and scenario.request_id == "client-req-42"
    server = _one(scenario.spans, SpanKind.SERVER)
    publish = _one(scenario.spans, SpanKind.PRODUCER)
    task = _one(scenario.spans, SpanKind.CONSUMER)
    assert TASK in task.name and TASK in publish.name
    assert task.context.trace_id == server.context.trace_id == publish.context.trace_id
    assert task.parent is not None and task.parent.span_id == publish.context.span_id


def test_the_tasks_spans_carry_the_tenant(scenario):
    task = _one(scenario.spans, SpanKind.CONSUMER)
    assert task.attributes["tenant.id"] == SLUG
    assert _one(scenario.spans, SpanKind.SERVER).attributes["tenant.id"] == SLUG
    in_task = [
        s
        for s in scenario.spans
        if s.attributes.get("db.system") == "postgresql"
        and s.parent is not None
        and s.parent.span_id == task.context.span_id
    ]
    assert in_task, "the task's queries are traced inside the task"
    assert {s.attributes.get("tenant.id") for s in in_task} == {SLUG}


def test_the_workers_log_lines_name_the_request_and_the_trace(scenario):
    task = _one(scenario.spans, SpanKind.CONSUMER)
    trace_id = format(task.context.trace_id, "032x")
    in_task = [r for r in scenario.logs if r.get("span_id") == format(task.context.span_id, "016x")]
    assert in_task, "the worker logs while the task runs"
    assert {(r["trace_id"], r["request_id"], r["tenant_id"]) for r in in_task} == {
        (trace_id, "client-req-42", SLUG)
    }


def test_the_workers_task_is_timed_in_the_metrics(scenario):
    assert scenario.tasks_counted == 1
