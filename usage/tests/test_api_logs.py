"""POST /v1/logs: the OTLP log receiver keeps records with their runs, routed, bounded and
idempotent; bad bodies get a precise 4xx and store nothing."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from factory_portal.accounts.services import api_key_create
from tests.support import bearer, host_client, key_for, run_update
from usage.models import Run, RunLog
from usage.tests.otlp_logs import TRACE_ID, as_logs_request, as_otlp_logs_json, sdk_log
from usage.trace_routing.models import TraceRoute

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TRACE_HEX = f"{TRACE_ID:032x}"


def post_logs(host, key, records, *, as_json=False, gzip_body=False, **headers):
    request = as_logs_request(records)
    body, content_type = request.SerializeToString(), "application/x-protobuf"
    if as_json:
        body, content_type = as_otlp_logs_json(request), "application/json"
    if gzip_body:
        body, headers = gzip.compress(body), {**headers, "HTTP_CONTENT_ENCODING": "gzip"}
    return host_client(host).post(
        "/v1/logs", data=body, content_type=content_type, **bearer(key), **headers
    )


def answer_of(response) -> ExportLogsServiceResponse:
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    return answer


def run_in(tenant, run_id="run-1"):
    with schema_context(tenant.schema):
        run_update(run_id, "Running", AT, project="web", started_at=AT)


def logs_of(tenant, run_id="run-1"):
    with schema_context(tenant.schema):
        return list(RunLog.objects.filter(run__run_id=run_id).order_by("time", "id"))


@pytest.fixture
def platform_key(db):
    with schema_context("public"):
        _, raw = api_key_create(name="factory", scopes=["ingest"])
    return raw


def test_records_are_kept_with_their_run(alpha):
    run_in(alpha)
    _, key = key_for(alpha, ["ingest"])
    records = [
        sdk_log(AT, "job started", runId="run-1", jobId="build", stepName="build"),
        sdk_log(AT + timedelta(seconds=5), "push rejected", level="ERROR", runId="run-1"),
    ]
    response = post_logs(alpha.host, key, records, gzip_body=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    assert answer_of(response).partial_success.rejected_log_records == 0
    first, second = logs_of(alpha)
    assert (first.level, first.message, first.job_ref, first.step_name) == (
        "INFO",
        "job started",
        "build",
        "build",
    )
    assert (second.level, second.trace_id) == ("ERROR", TRACE_HEX)


def test_a_resend_changes_nothing_and_json_gets_a_json_answer(alpha):
    run_in(alpha)
    _, key = key_for(alpha, ["ingest"])
    records = [sdk_log(AT + timedelta(seconds=i), f"line {i}", runId="run-1") for i in range(3)]
    post_logs(alpha.host, key, records)
    response = post_logs(alpha.host, key, records, as_json=True)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}
    assert len(logs_of(alpha)) == 3


def test_records_of_an_unknown_run_are_rejected_unless_they_name_its_project(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = post_logs(
        alpha.host,
        key,
        [
            sdk_log(AT, "orphan", runId="run-x"),
            sdk_log(AT, "no run at all", trace_id=0),
            sdk_log(AT, "early", runId="run-new", projectId="checkout"),
        ],
    )
    partial = answer_of(response).partial_success
    assert partial.rejected_log_records == 2
    assert "unknown run 'run-x'" in partial.error_message
    assert "no runId / run.id" in partial.error_message
    with schema_context(alpha.schema):
        stub = Run.objects.get(run_id="run-new")
        assert (stub.status, stub.project.slug) == ("Requested", "checkout")
        assert not Run.objects.filter(run_id="run-x").exists()
    assert [r.message for r in logs_of(alpha, "run-new")] == ["early"]


def test_a_record_without_run_id_follows_its_trace_route(alpha):
    run_in(alpha)
    with schema_context("public"):
        TraceRoute.objects.create(
            trace_id=TRACE_HEX, tenant=alpha.tenant, run_id="run-1", project="web"
        )
    _, key = key_for(alpha, ["ingest"])
    response = post_logs(alpha.host, key, [sdk_log(AT, "in the trace")])
    assert answer_of(response).partial_success.rejected_log_records == 0
    assert [r.message for r in logs_of(alpha)] == ["in the trace"]


def test_a_tenant_key_writes_only_its_own_tenant(alpha, beta):
    run_in(beta, "beta-run")
    with schema_context("public"):  # beta's route is beta's: alpha's records never follow it
        TraceRoute.objects.create(
            trace_id=TRACE_HEX, tenant=beta.tenant, run_id="beta-run", project="web"
        )
    _, key = key_for(alpha, ["ingest"])
    response = post_logs(
        alpha.host,
        key,
        [
            sdk_log(AT, "into beta?", runId="beta-run"),
            sdk_log(AT, "naming beta", runId="beta-run", tenantId="beta"),
            sdk_log(AT, "by trace"),
        ],
    )
    partial = answer_of(response).partial_success
    assert partial.rejected_log_records == 3
    assert "names tenant 'beta' but was sent with a key of tenant 'alpha'" in partial.error_message
    assert logs_of(beta, "beta-run") == []
    with schema_context(alpha.schema):
        assert RunLog.objects.count() == 0 and not Run.objects.filter(run_id="beta-run").exists()


def test_the_platform_key_routes_by_tenant_attribute_or_trace(
    platform_key, public_host, alpha, beta
):
    run_in(alpha)
    run_in(beta, "run-b")
    with schema_context("public"):
        TraceRoute.objects.create(
            trace_id=TRACE_HEX, tenant=beta.tenant, run_id="run-b", project="web", via_platform=True
        )
    response = post_logs(
        public_host,
        platform_key,
        [
            sdk_log(
                AT, "to alpha", runId="run-1", trace_id=0x1, resource={"run.tenant_id": "alpha"}
            ),
            sdk_log(AT, "to beta by trace"),
            sdk_log(AT, "nobody", runId="r", tenantId="gamma-unknown", trace_id=0x2),
            sdk_log(AT, "no tenant, no route", runId="r", trace_id=0x3),
        ],
    )
    partial = answer_of(response).partial_success
    assert partial.rejected_log_records == 2
    assert "unknown or inactive tenant 'gamma-unknown'" in partial.error_message
    assert "no tenantId" in partial.error_message
    assert [r.message for r in logs_of(alpha)] == ["to alpha"]
    assert [r.message for r in logs_of(beta, "run-b")] == ["to beta by trace"]


def test_keys_are_refused_on_the_wrong_host(platform_key, public_host, alpha):
    _, key = key_for(alpha, ["ingest"])
    assert post_logs(public_host, key, [sdk_log(AT, "x")]).status_code == 401
    assert post_logs(alpha.host, platform_key, [sdk_log(AT, "x")]).status_code == 401
    _, read_key = key_for(alpha, ["read"])
    assert post_logs(alpha.host, read_key, [sdk_log(AT, "x")]).status_code == 403


@override_settings(RUN_LOG_MAX_PER_RUN=3)
def test_a_run_keeps_its_bound_and_then_only_errors(alpha):
    run_in(alpha)
    _, key = key_for(alpha, ["ingest"])
    infos = [sdk_log(AT + timedelta(seconds=i), f"info {i}", runId="run-1") for i in range(5)]
    errors = [
        sdk_log(AT + timedelta(seconds=10 + i), f"error {i}", level="ERROR", runId="run-1")
        for i in range(5)
    ]
    partial = answer_of(post_logs(alpha.host, key, infos + errors)).partial_success
    kept = [r.message for r in logs_of(alpha)]
    assert kept == ["info 0", "info 1", "info 2", "error 0", "error 1", "error 2"]
    assert partial.rejected_log_records == 4
    assert "RUN_LOG_MAX_PER_RUN 3" in partial.error_message
    later = [sdk_log(AT + timedelta(minutes=5), "late info", runId="run-1")]
    assert answer_of(post_logs(alpha.host, key, later)).partial_success.rejected_log_records == 1


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status"),
    [
        (b"\xff\xff\xff\xff", "application/x-protobuf", {}, 400),
        (b"[1]", "application/json", {}, 400),
        (
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}',
            "application/json",
            {},
            400,
        ),
        (b"{}", "text/plain", {}, 415),
        (b"{}", "application/json", {"HTTP_CONTENT_ENCODING": "br"}, 415),
        (b"not gzip", "application/json", {"HTTP_CONTENT_ENCODING": "gzip"}, 400),
    ],
)
def test_unusable_bodies_get_a_problem(alpha, body, content_type, headers, status):
    _, key = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/v1/logs", data=body, content_type=content_type, **bearer(key), **headers
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status


@override_settings(OTLP_MAX_LOG_RECORDS_PER_REQUEST=5)
def test_too_many_records_is_a_413_and_nothing_is_stored(alpha):
    run_in(alpha)
    _, key = key_for(alpha, ["ingest"])
    records = [sdk_log(AT + timedelta(seconds=i), str(i), runId="run-1") for i in range(6)]
    for as_json in (False, True):
        response = post_logs(alpha.host, key, records, as_json=as_json)
        assert response.status_code == 413
        assert "At most 5 log records per request" in response.json()["detail"]
    assert logs_of(alpha) == []


def test_non_finite_numbers_and_control_characters_in_keys_are_stored_cleaned(alpha):
    """jsonb holds neither NaN nor infinity nor NUL: such attributes are kept as text and
    cleaned keys (a review found the whole batch answered 500, which exporters retry forever)."""
    run_in(alpha)
    _, key = key_for(alpha, ["ingest"])
    attributes = {
        "runId": "run-1",
        "ratio": float("nan"),
        "peak": float("inf"),
        "low": float("-inf"),
        "a\x00b": "nul in the key",
        "\x07": "only a control character",
    }
    for as_json in (False, True):
        at = AT + timedelta(seconds=1 if as_json else 0)
        record = sdk_log(at, f"json {as_json}", **attributes)
        response = post_logs(alpha.host, key, [record], as_json=as_json)
        assert response.status_code == 200, response.content[:300]
    for log in logs_of(alpha):
        kept = log.attributes
        assert (kept["ratio"], kept["peak"], kept["low"]) == ("NaN", "Infinity", "-Infinity")
        assert (kept["a b"], kept["_"]) == ("nul in the key", "only a control character")
    assert len(logs_of(alpha)) == 2
