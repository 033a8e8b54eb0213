"""Errors in OTLP spans (pure): exception events and error statuses, bounds, parking JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from usage.domain.limits import ERROR_MESSAGE_BYTES, STACKTRACE_BYTES, TRUNCATED_MARKER
from usage.domain.otlp import (
    ErrorSpan,
    ExternalSpan,
    FlatSpan,
    JobSpan,
    LlmSpan,
    RunSpan,
    SpanEvent,
    bounded_text,
    flatten,
    record_from_json,
    record_to_json,
    spans_map,
    traces_decode,
)
from usage.tests.otlp_spans import as_otlp_json, as_request, failing_run_spans

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _mapped(as_json: bool = False):
    message = as_request(failing_run_spans())
    if as_json:
        message = traces_decode(as_otlp_json(message), "application/json")
    records, rejected = spans_map(flatten(message))
    assert rejected == []
    return records


def _by_kind(records):
    return {(type(r).__name__, getattr(r, "attempt", None)): r for r in records}


def test_exception_events_and_error_statuses_travel_with_their_records():
    for as_json in (False, True):  # protobuf and OTLP/JSON give the same errors
        records = _by_kind(_mapped(as_json))
        first = records[("JobSpan", 1)].errors
        assert [(f.source, f.type, f.step_name, f.attempt) for f in first] == [
            ("exception", "usage.tests.otlp_spans.DeployConflict", "deploy", 1)
        ]
        assert "deploy-7f3a9c21.yaml" in first[0].message
        assert "in _deploy\n    raise DeployConflict" in first[0].stacktrace  # lines kept
        external = records[("ExternalSpan", None)]
        # The exception event wins over the status message of the same span.
        assert [(f.source, f.type, f.attempt) for f in external.errors] == [
            ("exception", "java.lang.IllegalStateException", 2)
        ]
        llm = records[("LlmSpan", None)]
        assert [(f.source, f.type, f.message) for f in llm.errors] == [
            ("status", "RateLimitError", "429 Too Many Requests, retry after 20s")
        ]
        other = records[("ErrorSpan", None)]
        assert isinstance(other, ErrorSpan) and other.job_id == "deploy"
        assert [(f.type, f.span_name, f.step_name, f.attempt) for f in other.errors] == [
            ("GitError", "git.push", "deploy", 2)
        ]
        assert records[("JobSpan", 2)].errors == ()
        assert records[("RunSpan", None)].errors == ()  # ERROR status not set on it


def test_llm_spans_keep_their_timing():
    llm = next(r for r in _mapped() if isinstance(r, LlmSpan))
    assert llm.started_at is not None and llm.started_at <= llm.occurred_at
    assert llm.duration_ms is not None and llm.duration_ms >= 0


def _span(**fields):
    values = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "parent_span_id": "",
        "name": "factory.job.execute",
        "start": NOW - timedelta(minutes=1),
        "end": NOW,
        "attrs": {"job.id": "build", "run.id": "r1", "run.project_id": "web"},
        "resource": {},
        "status_code": 0,
        "status_message": "",
    }
    values.update(fields)
    return FlatSpan(**values)


def test_a_status_without_message_or_type_is_not_an_error():
    records, _ = spans_map([_span(status_code=Status.STATUS_CODE_ERROR)])
    assert isinstance(records[0], JobSpan) and records[0].errors == ()
    typed = _span(
        status_code=Status.STATUS_CODE_ERROR,
        attrs={"job.id": "build", "run.id": "r1", "job.failure_type": "timeout"},
    )
    records, _ = spans_map([typed])
    assert [(f.source, f.type, f.message) for f in records[0].errors] == [("status", "timeout", "")]


def test_a_run_span_with_an_error_status_reports_it():
    span = _span(
        name="factory.run.execute",
        attrs={"run.id": "r1", "run.project_id": "web"},
        status_code=Status.STATUS_CODE_ERROR,
        status_message="deploy_error",
    )
    records, _ = spans_map([span])
    assert isinstance(records[0], RunSpan)
    assert [(f.message, f.step_name, f.attempt) for f in records[0].errors] == [
        ("deploy_error", "", None)
    ]


def test_texts_are_bounded_with_a_marker_and_lines_kept():
    event = SpanEvent(
        NOW,
        {
            "exception.type": "E" * 1000,
            "exception.message": "é" * 10_000,
            "exception.stacktrace": "line\n\tat x\x00y\n" * 5000,
        },
    )
    records, _ = spans_map([_span(exceptions=(event,))])
    fault = records[0].errors[0]
    assert len(fault.type) == 200
    assert len(fault.message.encode()) <= ERROR_MESSAGE_BYTES
    assert fault.message.endswith(TRUNCATED_MARKER)
    assert len(fault.stacktrace.encode()) <= STACKTRACE_BYTES
    assert fault.stacktrace.startswith("line\n\tat x y\n") and "\x00" not in fault.stacktrace
    assert bounded_text("short", 100) == "short" and bounded_text(None, 100) == ""


def test_an_event_time_out_of_bounds_falls_back_to_the_span_end():
    event = SpanEvent(NOW + timedelta(days=30), {"exception.type": "E"})
    records, _ = spans_map([_span(exceptions=(event,))], latest=NOW + timedelta(minutes=5))
    assert records[0].errors[0].occurred_at == NOW


def test_only_a_bounded_number_of_exception_events_is_kept():
    span = Span(trace_id=b"t" * 16, span_id=b"s" * 8, name="x", start_time_unix_nano=1)
    for n in range(50):
        event = span.events.add(name="exception", time_unix_nano=2)
        event.attributes.add(key="exception.type").value.string_value = f"E{n}"
    span.events.add(name="log", time_unix_nano=2)
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(span)
    assert len(flatten(request)[0].exceptions) == 8


def test_errors_survive_the_parking_json():
    for record in _mapped():
        if not record.errors:
            continue
        back = record_from_json(record.trace_id, record.span_id, record_to_json(record))
        assert back == record


def test_records_parked_before_errors_and_timing_still_read():
    llm = next(r for r in _mapped() if isinstance(r, LlmSpan))
    old = record_to_json(llm)
    del old["errors"]
    del old["fields"]["started_at"], old["fields"]["duration_ms"]
    back = record_from_json(llm.trace_id, llm.span_id, old)
    assert isinstance(back, LlmSpan) and back.started_at is None and back.errors == ()
    external = next(r for r in _mapped() if isinstance(r, ExternalSpan))
    assert record_from_json(external.trace_id, external.span_id, record_to_json(external)) == (
        external
    )
