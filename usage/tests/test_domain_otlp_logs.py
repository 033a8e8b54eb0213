"""OTLP log decoding and mapping (pure), on requests the stock OpenTelemetry SDK encodes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from usage.domain.otlp import OtlpDecodeError, OtlpMediaTypeError
from usage.domain.otlp_logs import (
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTES,
    TooManyLogRecords,
    level_of,
    logs_decode,
    logs_map,
)
from usage.tests.otlp_logs import (
    SPAN_ID,
    TRACE_ID,
    as_logs_request,
    as_otlp_logs_json,
    sdk_log,
)

AT = datetime(2026, 11, 20, 10, 15, 2, 250_000, tzinfo=UTC)


def _mapped(body: bytes, content_type: str = "application/x-protobuf"):
    return logs_map(logs_decode(body, content_type), latest=AT + timedelta(minutes=5))


def test_an_sdk_record_maps_to_the_seed_fields_in_protobuf_and_json():
    request = as_logs_request(
        [
            sdk_log(
                AT,
                "Job failed: git push rejected",
                level="ERROR",
                runId="run-42",
                jobId="implement",
                stepName="generate-repo",
                tenantId="alpha",
                templateRecipeId="python-fastapi-service",
                workerId="w-7",
                workerPool="gpu",
                operation="generate_repo",
                duration_ms=1200,
            )
        ]
    )
    (proto,), rejected = _mapped(request.SerializeToString())
    (from_json,), _ = _mapped(as_otlp_logs_json(request), "application/json")
    assert rejected == []
    assert proto == from_json  # the same record, digest included, whatever the encoding
    assert (proto.level, proto.severity_number, proto.message) == (
        "ERROR",
        17,
        "Job failed: git push rejected",
    )
    assert (proto.run_id, proto.job_id, proto.step_name, proto.tenant) == (
        "run-42",
        "implement",
        "generate-repo",
        "alpha",
    )
    assert proto.template_recipe_id == "python-fastapi-service"
    assert (proto.trace_id, proto.span_id) == (f"{TRACE_ID:032x}", f"{SPAN_ID:016x}")
    assert proto.time == AT
    assert proto.attributes == {
        "workerId": "w-7",
        "workerPool": "gpu",
        "operation": "generate_repo",
        "duration_ms": 1200,
    }
    assert proto.is_error


def test_dotted_otel_names_and_resource_attributes_are_read():
    request = as_logs_request(
        [
            sdk_log(
                AT,
                "started",
                **{"run.id": "run-7", "job.id": "build", "job.step_name": "build"},
                resource={"run.tenant_id": "beta", "run.project_id": "checkout"},
            )
        ]
    )
    (record,), _ = _mapped(request.SerializeToString())
    assert (record.run_id, record.job_id, record.step_name) == ("run-7", "build", "build")
    assert (record.tenant, record.project) == ("beta", "checkout")


def test_a_structured_body_gives_its_message_and_context():
    body = {"message": "retry 2 of 3", "runId": "run-9", "error": {"type": "Timeout"}}
    (record,), _ = _mapped(as_logs_request([sdk_log(AT, body, level="WARN")]).SerializeToString())
    assert (record.message, record.run_id, record.level) == ("retry 2 of 3", "run-9", "WARN")
    assert json.loads(record.attributes["error"]) == {"type": "Timeout"}


@pytest.mark.parametrize(
    ("text", "number", "level"),
    [
        ("WARNING", 0, "WARN"),
        ("warn", 0, "WARN"),
        ("FATAL", 0, "CRITICAL"),
        ("ERROR3", 0, "ERROR"),
        ("TRACE", 0, "DEBUG"),
        ("", 3, "DEBUG"),
        ("", 9, "INFO"),
        ("", 14, "WARN"),
        ("", 18, "ERROR"),
        ("", 22, "CRITICAL"),
        ("", 0, "INFO"),
        ("loud", 17, "ERROR"),
    ],
)
def test_levels_from_severity_text_else_number(text, number, level):
    assert level_of(text, number) == level


def test_attributes_are_bounded():
    many = {f"k{i:02d}": "x" * (MAX_ATTRIBUTE_CHARS + 50) for i in range(MAX_ATTRIBUTES + 5)}
    request = as_logs_request([sdk_log(AT, "m" * 20_000, runId="r", **many)])
    (record,), _ = _mapped(request.SerializeToString())
    assert len(record.message) == 8_000
    assert len(record.attributes) == MAX_ATTRIBUTES + 1 and record.attributes["_dropped"] == 5
    assert all(
        len(v) <= MAX_ATTRIBUTE_CHARS for k, v in record.attributes.items() if k != "_dropped"
    )


def test_unusable_records_are_rejected_with_reasons():
    request = as_logs_request(
        [
            sdk_log(AT, "ok", runId="r-1"),
            sdk_log(AT + timedelta(days=1), "from the future", runId="r-1"),
            sdk_log(AT, "bad id", runId="a\x00b"),
        ]
    )
    records, rejected = _mapped(request.SerializeToString())
    assert [r.message for r in records] == ["ok"]
    reasons = [r.reason for r in rejected]
    assert reasons[0] == "log record timed in the future"
    assert reasons[1].startswith("runId ")


def test_the_digest_tells_records_apart_and_recognises_a_resend():
    same = [sdk_log(AT, "one", runId="r"), sdk_log(AT, "one", runId="r")]
    other = [
        sdk_log(AT, "two", runId="r"),
        sdk_log(AT + timedelta(microseconds=1), "one", runId="r"),
    ]
    records, _ = _mapped(as_logs_request(same + other).SerializeToString())
    assert len({r.digest for r in records}) == 3


def test_too_many_records_are_refused_before_building_them():
    request = as_logs_request([sdk_log(AT, str(i)) for i in range(11)])
    with pytest.raises(TooManyLogRecords):
        logs_decode(request.SerializeToString(), "application/x-protobuf", max_records=10)
    with pytest.raises(TooManyLogRecords):
        logs_decode(as_otlp_logs_json(request), "application/json", max_records=10)


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", OtlpDecodeError),
        (b"[]", "application/json", OtlpDecodeError),
        (b"{", "application/json", OtlpDecodeError),
        (
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"abcd"}]}]}]}',
            "application/json",
            OtlpDecodeError,
        ),
        (
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"zz"}]}]}]}',
            "application/json",
            OtlpDecodeError,
        ),
        (b"{}", "text/plain", OtlpMediaTypeError),
    ],
)
def test_bodies_that_are_not_otlp_logs(body, content_type, error):
    with pytest.raises(error):
        logs_decode(body, content_type)


def test_protobuf_ids_of_the_wrong_length_are_refused():
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.add(trace_id=b"\x01" * 5)
    with pytest.raises(OtlpDecodeError, match="trace_id must be 16 bytes"):
        logs_decode(request.SerializeToString(), "application/x-protobuf")
