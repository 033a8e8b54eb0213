"""OTLP log requests as the stock OpenTelemetry SDK builds them (its own encoder on SDK log
records), in protobuf and in OTLP/JSON, for the decoder and API tests."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._internal._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

TRACE_ID = 0x5B8AA5A2D2C872E8321CF37308D69DF2
SPAN_ID = 0x051581BF3CB55C13
SEVERITIES = {
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARN": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
    "CRITICAL": SeverityNumber.FATAL,
}


def sdk_log(
    at: datetime,
    message: Any,
    *,
    level: str = "INFO",
    severity_text: str | None = None,
    trace_id: int = TRACE_ID,
    span_id: int = SPAN_ID,
    resource: dict[str, Any] | None = None,
    **attributes: Any,
) -> ReadableLogRecord:
    """One SDK log record (as ``LoggingHandler`` or a structured logger emits it)."""
    context = None
    if trace_id:
        span = NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(1)))
        context = trace.set_span_in_context(span)
    record = LogRecord(
        timestamp=int(at.timestamp() * 1e9),
        observed_timestamp=int(at.timestamp() * 1e9),
        context=context,
        severity_text=severity_text if severity_text is not None else level,
        severity_number=SEVERITIES[level],
        body=message,
        attributes=attributes,
    )
    return ReadableLogRecord(
        log_record=record,
        resource=Resource.create({"service.name": "factory-worker", **(resource or {})}),
    )


def as_logs_request(records: list[ReadableLogRecord]) -> ExportLogsServiceRequest:
    return encode_logs(records)


def as_otlp_logs_json(request: ExportLogsServiceRequest) -> bytes:
    """OTLP/JSON as exporters send it: protobuf's JSON mapping, but ids as hex, not base64."""
    document = json.loads(json_format.MessageToJson(request))
    for resource_logs in document.get("resourceLogs", []):
        for scope in resource_logs.get("scopeLogs", []):
            for record in scope.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex()
    return json.dumps(document).encode()
