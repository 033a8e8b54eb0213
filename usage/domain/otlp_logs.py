"""OTLP log records to run log records (pure: bytes in, dataclasses out, no database).

``logs_decode`` reads an ``ExportLogsServiceRequest`` (protobuf or OTLP/JSON with hex ids),
counting its records from the wire format before anything is built (``OTLP_MAX_LOG_RECORDS_
PER_REQUEST``). ``logs_map`` turns each record into a ``LogRecordIn`` with the seed's fields
(the factory runtime's telemetry contract, "Logs"):

- ``level`` from ``severity_text`` (DEBUG, INFO, WARN/WARNING, ERROR, CRITICAL/FATAL, TRACE) or
  else ``severity_number`` (OTel ranges: 1-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24
  CRITICAL); neither: INFO;
- ``message`` from the body (a string; a map's ``message``/``msg`` entry, its other entries
  becoming attributes; anything else as JSON);
- run, job, step, tenant, template, project, trace and span ids from the record's attributes
  (the seed's camelCase names and the dotted OTel ones: ``runId``/``run.id``, ``jobId``/
  ``job.id``, ``stepName``/``job.step_name``, ``tenantId``/``run.tenant_id``, …), else from the
  body map, else the resource; trace and span ids from the record itself first;
- every other attribute into ``attributes``, bounded (``MAX_ATTRIBUTES`` keys, values cut to
  ``MAX_ATTRIBUTE_CHARS``).
``digest`` is the record's identity (its time, ids, severity, message and attributes): OTLP log
records carry no id, so a re-sent record is recognised by it. Shares the wire-format and
attribute helpers of ``usage.domain.otlp``; never touches the database.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from factory_portal.periods import EARLIEST
from usage.domain.ids import id_check
from usage.domain.limits import STEP_NAME_LENGTH, TEMPLATE_LENGTH
from usage.domain.otlp import (
    VALUES_EXTRA,
    VALUES_PER_SPAN,
    OtlpDecodeError,
    OtlpMediaTypeError,
    OtlpTooLarge,
    _Budget,
    _hex_ids_to_base64,
    _text,
    _time,
    _value,
    attributes,
)
from usage.domain.otlp_wire import json_object, json_parse, protobuf_parse, wire_fields

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
ERROR_LEVELS = frozenset(("ERROR", "CRITICAL"))
SEVERITY_TEXTS = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "INFORMATION": "INFO",
    "NOTICE": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "ERROR": "ERROR",
    "ERR": "ERROR",
    "CRITICAL": "CRITICAL",
    "FATAL": "CRITICAL",
    "ALERT": "CRITICAL",
    "EMERGENCY": "CRITICAL",
}

RUN_KEYS = ("runId", "run.id", "run_id")
JOB_KEYS = ("jobId", "job.id", "job_id")
STEP_KEYS = ("stepName", "job.step_name", "step.name", "step_name")
TENANT_KEYS = ("tenantId", "run.tenant_id", "tenant.id", "tenant_id", "factory.tenant_id")
PROJECT_KEYS = ("projectId", "run.project_id", "project.id", "project_id", "factory.project_id")
TEMPLATE_KEYS = ("templateRecipeId", "run.template_recipe_id", "template_recipe_id")
TRACE_KEYS = ("traceId", "trace_id", "trace.id")
SPAN_KEYS = ("spanId", "span_id", "span.id")
MAPPED_KEYS = frozenset(
    (
        *RUN_KEYS,
        *JOB_KEYS,
        *STEP_KEYS,
        *TENANT_KEYS,
        *PROJECT_KEYS,
        *TEMPLATE_KEYS,
        *TRACE_KEYS,
        *SPAN_KEYS,
        # the seed's own copies of the level and the message
        "level",
        "severity",
        "message",
        "msg",
        "timestamp",
    )
)

MESSAGE_LENGTH = 8_000
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_CHARS = 2_000  # a stack trace in ``exception.stacktrace`` keeps its top
ID_LENGTH = 128


class TooManyLogRecords(OtlpTooLarge):
    title = "Too many log records"

    def __init__(self, limit: int, count: int | None) -> None:
        got = f"{count:,}" if count is not None else f"more than {limit:,}"
        super().__init__(
            f"At most {limit:,} log records per request; this one has {got}. Lower the "
            "exporter's batch size (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, or the collector's "
            "send_batch_max_size)."
        )


_RESOURCE_LOGS = ExportLogsServiceRequest.DESCRIPTOR.fields_by_name["resource_logs"].number
_SCOPE_LOGS = ResourceLogs.DESCRIPTOR.fields_by_name["scope_logs"].number
_LOG_RECORDS = ScopeLogs.DESCRIPTOR.fields_by_name["log_records"].number


def _protobuf_records_check(body: bytes, limit: int) -> None:
    """Count log records from the wire format and stop at ``limit`` (and at a budget of fields
    walked), before the message is built: bounded work for any body."""
    budget = 4 * limit + 64
    walked = records = 0

    def walk(start: int, end: int, number: int) -> Iterator[tuple[int, int]]:
        nonlocal walked
        for field_number, field_start, field_end in wire_fields(body, start, end):
            walked += 1
            if walked > budget:
                raise TooManyLogRecords(limit, None)
            if field_number == number and field_start >= 0:
                yield field_start, field_end

    for resource in walk(0, len(body), _RESOURCE_LOGS):
        for scope in walk(*resource, _SCOPE_LOGS):
            for _ in walk(*scope, _LOG_RECORDS):
                records += 1
                if records > limit:
                    raise TooManyLogRecords(limit, None)


def _listed(node: Any, *keys: str) -> list[Any]:
    if isinstance(node, dict):
        for key in keys:
            value = node.get(key)
            if isinstance(value, list):
                return value
    return []


def _ids_check(request: ExportLogsServiceRequest, *, as_json: bool) -> None:
    """A record's trace id is 16 bytes and its span id 8, or empty (logs outside a span)."""
    for r, resource_logs in enumerate(request.resource_logs):
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for n, record in enumerate(scope_logs.log_records):
                for name, size in (("trace_id", 16), ("span_id", 8)):
                    value = getattr(record, name)
                    if not value or len(value) == size:
                        continue
                    if as_json:
                        where = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}]"
                        json_name = "traceId" if name == "trace_id" else "spanId"
                        raise OtlpDecodeError(
                            f"{where}.{json_name} must be {size * 2} hex characters or empty; "
                            f"got {len(value) * 2}"
                        )
                    where = f"resource_logs[{r}].scope_logs[{s}].log_records[{n}]"
                    raise OtlpDecodeError(
                        f"{where}.{name} must be {size} bytes or empty; got {len(value)}"
                    )


def logs_decode(
    body: bytes, content_type: str, *, max_records: int = 10_000
) -> ExportLogsServiceRequest:
    """The request in ``body``; raises OtlpDecodeError for a body that is not OTLP logs or has ids
    of the wrong length, OtlpMediaTypeError for another content type, and TooManyLogRecords
    beyond ``max_records`` (counted before the records are built)."""
    content_type = content_type.split(";", 1)[0].strip().lower()
    request = ExportLogsServiceRequest()
    if content_type == "application/x-protobuf":
        _protobuf_records_check(body, max_records)
        protobuf_parse(request, body)
        _ids_check(request, as_json=False)
        return request
    if content_type == "application/json":
        document = json_object(body, "ExportLogsServiceRequest")
        count = sum(
            len(_listed(scope, "logRecords", "log_records"))
            for resource in _listed(document, "resourceLogs", "resource_logs")
            for scope in _listed(resource, "scopeLogs", "scope_logs")
        )
        if count > max_records:
            raise TooManyLogRecords(max_records, count)
        json_parse(_hex_ids_to_base64(document), request)
        _ids_check(request, as_json=True)
        return request
    raise OtlpMediaTypeError(
        f"Content-Type {content_type or '(none)'!r} is not supported; OTLP/HTTP uses "
        "application/x-protobuf or application/json"
    )


@dataclass(frozen=True, slots=True)
class LogRecordIn:
    """One log record of a run, ready to store. ``run_id`` may still be empty (the service
    resolves it through the trace's route); ``tenant`` and ``project`` may be empty."""

    digest: str
    time: datetime
    level: str
    severity_number: int
    message: str
    run_id: str
    job_id: str
    step_name: str
    tenant: str
    project: str
    template_recipe_id: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.level in ERROR_LEVELS


@dataclass(frozen=True)
class RejectedLog:
    trace_id: str
    span_id: str
    time: str
    reason: str


def level_of(severity_text: str, severity_number: int) -> str:
    """The seed's level (DEBUG, INFO, WARN, ERROR, CRITICAL) of an OTLP record."""
    text = severity_text.strip().upper()
    if text in SEVERITY_TEXTS:
        return SEVERITY_TEXTS[text]
    stem = text.rstrip("0123456789")  # OTel's short names: WARN2, ERROR3, FATAL4
    if stem in SEVERITY_TEXTS:
        return SEVERITY_TEXTS[stem]
    if 1 <= severity_number <= 8:
        return "DEBUG"
    if 13 <= severity_number <= 16:
        return "WARN"
    if 17 <= severity_number <= 20:
        return "ERROR"
    if 21 <= severity_number <= 24:
        return "CRITICAL"
    return "INFO"


def _first_text(sources: tuple[dict[str, Any], ...], keys: tuple[str, ...]) -> str:
    for source in sources:
        for key in keys:
            value = source.get(key)
            if value not in (None, "") and not isinstance(value, (dict, list)):
                return str(value)
    return ""


MAX_KEY_CHARS = 100
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _bounded(value: Any) -> Any:
    """An attribute value as stored: scalars as they are, strings and containers (as JSON) cut
    to ``MAX_ATTRIBUTE_CHARS``."""
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[
            str(value)
        ]  # JSON has no NaN or infinity (PostgreSQL's jsonb refuses them)
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return _text(text, MAX_ATTRIBUTE_CHARS) or ""


def _attributes_kept(*sources: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    dropped = 0
    for source in sources:
        for key, value in source.items():
            if key in MAPPED_KEYS:
                continue
            # Keys are cleaned like values: jsonb holds no NUL, pages show no control characters.
            name = _text(key, MAX_KEY_CHARS) or "_"
            if name in kept:
                continue
            if len(kept) >= MAX_ATTRIBUTES:
                dropped += 1
                continue
            kept[name] = _bounded(value)
    if dropped:
        kept["_dropped"] = dropped
    return kept


def _message(body: Any) -> tuple[str, dict[str, Any]]:
    """The message of a record's body, and the body's other entries when it is a map."""
    if isinstance(body, dict):
        inner = body.get("message", body.get("msg"))
        if isinstance(inner, str):
            return inner, body
        return json.dumps(body, default=str, sort_keys=True), {}
    if body is None:
        return "", {}
    if isinstance(body, list):
        return json.dumps(body, default=str), {}
    return str(body), {}


def _digest(record: LogRecord, run_id: str, message: str, attrs: dict[str, Any]) -> str:
    identity = json.dumps(
        [
            record.time_unix_nano or record.observed_time_unix_nano,
            record.trace_id.hex(),
            record.span_id.hex(),
            record.severity_number,
            record.severity_text,
            run_id,
            message,
            attrs,
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def _identifier(value: str, name: str, *, run: bool) -> str:
    try:
        return id_check(value, run=run)
    except ValueError as problem:
        raise ValueError(f"{name} {problem}") from None


def logs_map(
    request: ExportLogsServiceRequest, *, latest: datetime | None = None
) -> tuple[list[LogRecordIn], list[RejectedLog]]:
    """Records for every usable log record, and the reason for each one that cannot be used. A
    record may be timed ``latest`` at the most (now plus the tolerated skew; None: no bound).
    Raises TooManyValues (``OtlpTooLarge``) beyond ``VALUES_PER_SPAN`` attribute values per
    record on average."""
    count = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    budget = _Budget(VALUES_PER_SPAN * count + VALUES_EXTRA)
    records: list[LogRecordIn] = []
    rejected: list[RejectedLog] = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes, budget)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                try:
                    records.append(_record(record, resource, budget, latest))
                except ValueError as problem:
                    rejected.append(
                        RejectedLog(
                            record.trace_id.hex(),
                            record.span_id.hex(),
                            _when(record),
                            str(problem),
                        )
                    )
    return records, rejected


def _when(record: LogRecord) -> str:
    moment = _time(record.time_unix_nano or record.observed_time_unix_nano)
    return moment.isoformat() if moment else "no time"


def _record(
    record: LogRecord, resource: dict[str, Any], budget: _Budget, latest: datetime | None
) -> LogRecordIn:
    attrs = attributes(record.attributes, budget)
    message, body_map = _message(_value(record.body, budget))  # bounded like attributes
    sources = (attrs, body_map)
    moment = _time(record.time_unix_nano or record.observed_time_unix_nano)
    if moment is None:
        raise ValueError("log record without a time (time_unix_nano or observed_time_unix_nano)")
    if moment < EARLIEST:
        raise ValueError("log record timed before 2000")
    if latest is not None and moment > latest:
        raise ValueError("log record timed in the future")
    run_id = _first_text((*sources, resource), RUN_KEYS).strip()
    if run_id:
        run_id = _identifier(run_id, "runId", run=True)
    job_id = _first_text((*sources, resource), JOB_KEYS).strip()
    if job_id:
        job_id = _identifier(job_id, "jobId", run=False)
    trace_id = record.trace_id.hex() or _hex_id(_first_text(sources, TRACE_KEYS), 32)
    span_id = record.span_id.hex() or _hex_id(_first_text(sources, SPAN_KEYS), 16)
    kept = _attributes_kept(attrs, body_map)
    text = _text(message, MESSAGE_LENGTH) or ""
    return LogRecordIn(
        digest=_digest(record, run_id, text, kept),
        time=moment,
        level=level_of(record.severity_text, record.severity_number),
        severity_number=max(0, min(record.severity_number, 24)),
        message=text,
        run_id=run_id,
        job_id=job_id,
        step_name=_text(_first_text((*sources, resource), STEP_KEYS), STEP_NAME_LENGTH) or "",
        tenant=_first_text((*sources, resource), TENANT_KEYS).strip()[:ID_LENGTH],
        project=_first_text((*sources, resource), PROJECT_KEYS).strip()[:ID_LENGTH],
        template_recipe_id=_text(_first_text((*sources, resource), TEMPLATE_KEYS), TEMPLATE_LENGTH)
        or "",
        trace_id=trace_id,
        span_id=span_id,
        attributes=kept,
    )


def _hex_id(value: str, size: int) -> str:
    """An id from an attribute: kept only when it is ``size`` hex characters (else dropped: a
    descriptive field, not a reason to refuse the record)."""
    value = value.strip().lower()
    if len(value) == size and all(c in "0123456789abcdef" for c in value):
        return value
    return ""
