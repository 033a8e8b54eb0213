"""OTLP spans to usage records (pure: messages in, dataclasses out, no database).

Decoding uses the OpenTelemetry protobuf messages (``opentelemetry-proto``); OTLP/JSON is read by
protobuf's JSON parser after turning its hex trace and span ids into the base64 protobuf expects.

Mapping (SPEC §3), one frozen record type and one function per span kind (``spans_map`` picks):
- ``factory.run.execute`` -> ``RunSpan`` (``run_span_map``: ``run.id``, ``run.tenant_id``,
  ``run.project_id``, ``run.template_recipe_id``, ``run.type``, ``run.status``,
  ``run.duration_ms``);
- ``factory.job.execute`` -> ``JobSpan``, a job attempt (``job_span_map``: ``job.id``,
  ``job.step_name``, ``job.attempt``, ``job.status``, ``job.duration_ms``);
- ``factory.external.{service}`` -> ``ExternalSpan``, a call of the enclosing job
  (``external_span_map``);
- any span with GenAI token usage -> ``LlmSpan``, an LLM call with its timing (``llm_span_map``).
  Current and
  deprecated names are read: ``gen_ai.usage.input_tokens``/``prompt_tokens``,
  ``gen_ai.usage.output_tokens``/``completion_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
  ``gen_ai.usage.cache_creation.input_tokens``, ``gen_ai.provider.name``/``gen_ai.system``,
  ``gen_ai.response.model``/``gen_ai.request.model``, and the older ``llm.*`` attributes;
- the errors a span reports travel with its record (``errors``): each ``exception`` span event
  (``exception.type``, ``exception.message``, ``exception.stacktrace``, bounded in size) or, for a
  span with ERROR status and no exception event, its status message (``span_faults``); a span of
  no kind above that reports errors becomes an ``ErrorSpan``. Step and attempt are those of the
  span's job span, or of the job span enclosing it.
Run context (run id, project, tenant) comes from the span itself, else from the trace's run span,
else from resource attributes; the caller resolves what is still missing from earlier requests.
A record that must wait for its run span is stored as JSON written and read only here
(``record_to_json`` / ``record_from_json``). Bounds come from ``usage.domain.limits``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from factory_portal.periods import EARLIEST
from usage.domain.ids import id_check
from usage.domain.limits import (
    ERROR_LENGTH,
    ERROR_MESSAGE_BYTES,
    ERROR_TYPE_LENGTH,
    FAILURE_TYPE_LENGTH,
    MAX_ATTEMPT,
    MAX_DURATION_MS,
    MAX_ERRORS_PER_SPAN,
    MAX_TOKENS,
    MODEL_LENGTH,
    OPERATION_LENGTH,
    PROVIDER_LENGTH,
    RUN_TYPE_LENGTH,
    SERVICE_LENGTH,
    SPAN_NAME_LENGTH,
    STACKTRACE_BYTES,
    STEP_NAME_LENGTH,
    TEMPLATE_LENGTH,
    TRUNCATED_MARKER,
)
from usage.domain.otlp_wire import OtlpDecodeError as OtlpDecodeError  # re-exported
from usage.domain.otlp_wire import json_object, json_parse, protobuf_parse, wire_fields

RUN_SPAN = "factory.run.execute"
JOB_SPAN = "factory.job.execute"
EXTERNAL_PREFIX = "factory.external."

INPUT_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.prompt_tokens",
    "llm.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.completion_tokens",
    "llm.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.usage.cache_read_input_tokens",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.usage.cache_creation_input_tokens",
)
MODEL_KEYS = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model",
    "llm.model_name",
    "llm.request.model",
)
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
TENANT_KEYS = ("run.tenant_id", "tenant.id", "factory.tenant_id")
PROJECT_KEYS = ("run.project_id", "project.id", "factory.project_id")
STATUS_NAMES = {
    "requested": "Requested",
    "running": "Running",
    "succeeded": "Succeeded",
    "success": "Succeeded",
    "ok": "Succeeded",
    "failed": "Failed",
    "error": "Failed",
    "failure": "Failed",
    "cancelled": "Cancelled",
    "canceled": "Cancelled",
}


_ERROR = Status.STATUS_CODE_ERROR
# Every attribute that makes a span a usage span: a span with none of them is not an LLM call.
_USAGE_KEYS = frozenset((*INPUT_KEYS, *OUTPUT_KEYS))
# GenAI operations of an agent framework, not of a model: the usage a local (INTERNAL) agent,
# workflow or tool span carries is the total of the inference spans it encloses, which are
# counted themselves; a remote agent's (CLIENT: its model calls happen out of sight) is counted.
FRAMEWORK_OPERATIONS = frozenset(
    ("invoke_agent", "invoke_workflow", "create_agent", "execute_tool", "plan")
)


class OtlpMediaTypeError(OtlpDecodeError):
    """A Content-Type OTLP/HTTP does not use (answered 415)."""


class OtlpTooLarge(OtlpDecodeError):
    """A request over one of the per-request bounds (answered 413)."""

    title = "Request too large"


class TooManySpans(OtlpTooLarge):
    """More spans in one request than allowed; ``count`` is None when counting stopped early."""

    title = "Too many spans"

    def __init__(self, limit: int, count: int | None) -> None:
        self.limit = limit
        self.count = count
        got = f"{count:,}" if count is not None else f"more than {limit:,}"
        super().__init__(
            f"At most {limit:,} spans per request; this one has {got}. Lower the exporter's "
            "batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, or the collector's send_batch_max_size)."
        )


ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"))
HEX_RE = re.compile(r"[0-9a-fA-F]*")


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _b64(value, key)
            if key in ID_KEYS and isinstance(value, str)
            else _hex_ids_to_base64(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def _b64(hex_id: str, key: str) -> str:
    if not HEX_RE.fullmatch(hex_id) or len(hex_id) % 2:
        raise OtlpDecodeError(
            f"{key} {hex_id[:40]!r} is not hex (OTLP/JSON ids are hex strings: "
            "32 characters for a trace id, 16 for a span id)"
        )
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


_RESOURCE_SPANS = ExportTraceServiceRequest.DESCRIPTOR.fields_by_name["resource_spans"]
_SCOPE_SPANS = ResourceSpans.DESCRIPTOR.fields_by_name["scope_spans"]
_SPANS = ScopeSpans.DESCRIPTOR.fields_by_name["spans"]


def _protobuf_spans_check(body: bytes, limit: int) -> None:
    """Count the spans of a protobuf request from its wire format, before parsing, and stop at
    ``limit``: a 16 MB body of empty spans would otherwise parse into 8 million messages (1.4 GB,
    10 s). Every field walked at the three container levels counts against a budget too (bounded
    work for a body of millions of empty resource or scope entries)."""
    budget = 4 * limit + 64  # a resource and a scope per span at worst, and their few fields
    walked = spans = 0

    def walk(start: int, end: int, number: int) -> Iterator[tuple[int, int]]:
        nonlocal walked
        for field_number, field_start, field_end in wire_fields(body, start, end):
            walked += 1
            if walked > budget:
                raise TooManySpans(limit, None)
            if field_number == number and field_start >= 0:
                yield field_start, field_end

    for resource in walk(0, len(body), _RESOURCE_SPANS.number):
        for scope in walk(*resource, _SCOPE_SPANS.number):
            for _ in walk(*scope, _SPANS.number):
                spans += 1
                if spans > limit:
                    raise TooManySpans(limit, None)


def _listed(node: Any, *keys: str) -> list[Any]:
    if isinstance(node, dict):
        for key in keys:
            value = node.get(key)
            if isinstance(value, list):
                return value
    return []


def _json_spans_check(document: dict[str, Any], limit: int) -> None:
    count = sum(
        len(_listed(scope, "spans"))
        for resource in _listed(document, "resourceSpans", "resource_spans")
        for scope in _listed(resource, "scopeSpans", "scope_spans")
    )
    if count > limit:
        raise TooManySpans(limit, count)


def _ids_check(request: ExportTraceServiceRequest, *, as_json: bool) -> None:
    """Trace ids are 16 bytes and span ids 8 (a parent span id may be empty): anything else is
    not OTLP and would not fit where ids are stored."""
    names = {"trace_id": "traceId", "span_id": "spanId", "parent_span_id": "parentSpanId"}
    for r, resource_spans in enumerate(request.resource_spans):
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for n, span in enumerate(scope_spans.spans):
                for field_name, size in (("trace_id", 16), ("span_id", 8), ("parent_span_id", 8)):
                    value = getattr(span, field_name)
                    if len(value) == size or (field_name == "parent_span_id" and not value):
                        continue
                    if as_json:
                        where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}].{names[field_name]}"
                        wanted, got = f"{size * 2} hex characters", f"{len(value) * 2}"
                    else:
                        where = f"resource_spans[{r}].scope_spans[{s}].spans[{n}].{field_name}"
                        wanted, got = f"{size} bytes", f"{len(value)}"
                    raise OtlpDecodeError(f"{where} must be {wanted}; got {got}")


def traces_decode(
    body: bytes, content_type: str, *, max_spans: int = 10_000
) -> ExportTraceServiceRequest:
    """The request in ``body``; raises OtlpDecodeError for a body that is not OTLP, has ids of
    the wrong length, or more than ``max_spans`` spans (TooManySpans, before the spans are
    built)."""
    content_type = content_type.split(";", 1)[0].strip().lower()
    request = ExportTraceServiceRequest()
    if content_type == "application/x-protobuf":
        _protobuf_spans_check(body, max_spans)
        protobuf_parse(request, body)
        _ids_check(request, as_json=False)
        return request
    if content_type == "application/json":
        document = json_object(body, "ExportTraceServiceRequest")
        _json_spans_check(document, max_spans)
        json_parse(_hex_ids_to_base64(document), request)
        _ids_check(request, as_json=True)
        return request
    raise OtlpMediaTypeError(
        f"Content-Type {content_type or '(none)'!r} is not supported; OTLP/HTTP uses "
        "application/x-protobuf or application/json"
    )


# Attribute values (nested ones included) per span on average: the OpenTelemetry SDK's default
# attribute count limit per span; plus some for resources and nested values of small requests.
VALUES_PER_SPAN = 128
VALUES_EXTRA = 4096


class TooManyValues(OtlpTooLarge):
    title = "Too many attribute values"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit:,} attribute values in this request ({VALUES_PER_SPAN} per span on "
            f"average, plus {VALUES_EXTRA:,}; nested array and key-value list entries included)."
        )


class _Budget:
    """Attribute values still to convert in this request: a body of millions of empty
    attributes parses in a second but would take a minute of Python to convert."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise TooManyValues(self.limit)


def _value(any_value: AnyValue, budget: _Budget) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        budget.take(len(any_value.array_value.values))
        return [_value(v, budget) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        budget.take(len(any_value.kvlist_value.values))
        return {kv.key: _value(kv.value, budget) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind)


_SCALARS = frozenset(("string_value", "int_value", "bool_value", "double_value"))


def attributes(key_values: Any, budget: _Budget) -> dict[str, Any]:
    budget.take(len(key_values))
    converted: dict[str, Any] = {}
    scalars = _SCALARS
    for kv in key_values:  # one pass; scalar values (nearly all) read without a call
        value = kv.value
        kind = value.WhichOneof("value")
        converted[kv.key] = getattr(value, kind) if kind in scalars else _value(value, budget)
    return converted


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    get = attrs.get
    for key in keys:
        value = get(key)
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int | None:
    """A whole number given as one (an int, an integral float, ASCII digits), else None. Text
    of other digits ("²" is a digit to ``isdigit``) or longer than any count (Python refuses to
    read more than 4,300 digits) is not one: a span was rejected with Python's own message."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 30:
        return int(value)
    return None


def _time(nanos: int) -> datetime | None:
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC) if nanos else None


@dataclass(frozen=True)
class SpanEvent:
    """An ``exception`` span event (other events are not kept)."""

    time: datetime | None
    attrs: dict[str, Any]


class FlatSpan(NamedTuple):
    """A span as read off the request (immutable; a tuple: a thousand are built per request, and
    a frozen dataclass took twice as long to build)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start: datetime | None
    end: datetime | None
    attrs: dict[str, Any]
    resource: dict[str, Any]
    status_code: Status.StatusCode.ValueType
    status_message: str
    exceptions: tuple[SpanEvent, ...] = ()
    kind: Span.SpanKind.ValueType = Span.SpanKind.SPAN_KIND_UNSPECIFIED


def flatten(request: ExportTraceServiceRequest) -> list[FlatSpan]:
    """The request's spans with their attributes as dicts; raises TooManyValues beyond
    ``VALUES_PER_SPAN`` attribute values per span on average (each container is counted before
    its entries are converted)."""
    count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    budget = _Budget(VALUES_PER_SPAN * count + VALUES_EXTRA)
    spans: list[FlatSpan] = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes, budget)
        for scope_spans in resource_spans.scope_spans:
            spans.extend(_flat(span, resource, budget) for span in scope_spans.spans)
    return spans


def _flat(span: Span, resource: dict[str, Any], budget: _Budget) -> FlatSpan:
    return FlatSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        start=_time(span.start_time_unix_nano),
        end=_time(span.end_time_unix_nano),
        attrs=attributes(span.attributes, budget),
        resource=resource,
        status_code=span.status.code,
        status_message=span.status.message,
        kind=span.kind,
        exceptions=tuple(
            SpanEvent(_time(event.time_unix_nano), attributes(event.attributes, budget))
            for event in [e for e in span.events if e.name == "exception"][:MAX_ERRORS_PER_SPAN]
        )
        if span.events
        else (),
    )


# --- records -------------------------------------------------------------------------------------

# The id of an LLM span's usage event names the span: a re-sent span is a duplicate, and the
# run's waterfall finds the errors the span reported (by its span id).
SPAN_EVENT_PREFIX = "otlp-"


def span_event_id(trace_id: str, span_id: str) -> str:
    return f"{SPAN_EVENT_PREFIX}{trace_id}-{span_id}"


def span_of_event_id(event_id: str) -> str:
    """The span id in the id of an LLM span's usage event; "" for another id."""
    prefix, _, span_id = event_id.rpartition("-")
    return span_id if prefix.startswith(SPAN_EVENT_PREFIX) else ""


@dataclass(frozen=True, slots=True)
class SpanContext:
    """Who a span belongs to; any part may be unknown until resolved."""

    tenant: str = ""
    run_id: str = ""
    project: str = ""

    def filled(self, tenant: str = "", run_id: str = "", project: str = "") -> SpanContext:
        """This context with its unknown parts taken from the arguments."""
        return SpanContext(self.tenant or tenant, self.run_id or run_id, self.project or project)


@dataclass(frozen=True, slots=True)
class SpanFault:
    """An error a span reported: an ``exception`` event (``seq`` its place among the span's
    exception events) or, with ``source`` "status", the span's error status."""

    seq: int
    source: str  # exception | status
    occurred_at: datetime
    type: str
    message: str
    stacktrace: str
    span_name: str
    step_name: str
    attempt: int | None


@dataclass(frozen=True, slots=True)
class RunSpan:
    """A ``factory.run.execute`` span: the run's lifecycle."""

    trace_id: str
    span_id: str
    context: SpanContext
    status: str
    template_recipe_id: str | None
    run_type: str | None
    requested_at: datetime
    started_at: datetime
    finished_at: datetime
    duration_ms: int | None
    failure_type: str | None
    errors: tuple[SpanFault, ...] = ()

    kind: ClassVar[str] = "run"


@dataclass(frozen=True, slots=True)
class JobSpan:
    """A ``factory.job.execute`` span: one attempt of a job of the run."""

    trace_id: str
    span_id: str
    context: SpanContext
    job_id: str
    attempt: int
    step_name: str | None
    status: str
    started_at: datetime
    finished_at: datetime
    duration_ms: int | None
    failure_type: str | None
    errors: tuple[SpanFault, ...] = ()
    # Spans under it in its request that are no record (a tool's span): a call sent earlier
    # whose nearest unseen ancestor (``job_parent``) is one of them is this job's.
    covers: tuple[str, ...] = ()

    kind: ClassVar[str] = "job"


@dataclass(frozen=True, slots=True)
class LlmSpan:
    """A span with GenAI token usage: one LLM call (``job_id`` of the enclosing job span)."""

    trace_id: str
    span_id: str
    context: SpanContext
    job_id: str
    provider: str
    model: str
    operation: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    occurred_at: datetime
    started_at: datetime | None = None  # the call's timing (None in records parked before it)
    duration_ms: int | None = None
    errors: tuple[SpanFault, ...] = ()
    job_parent: str = ""  # no job_id: the span id its job span may have (``jobs_from_parents``)

    kind: ClassVar[str] = "llm"


@dataclass(frozen=True, slots=True)
class ExternalSpan:
    """A ``factory.external.{service}`` span: a call of the enclosing job to a service."""

    trace_id: str
    span_id: str
    context: SpanContext
    job_id: str
    service: str
    started_at: datetime
    duration_ms: int
    status: str  # ok | error | unset
    error: str
    errors: tuple[SpanFault, ...] = ()
    job_parent: str = ""  # no job_id: the span id its job span may have (``jobs_from_parents``)

    kind: ClassVar[str] = "external"


@dataclass(frozen=True, slots=True)
class ErrorSpan:
    """Any other span that reported errors: only its errors are kept."""

    trace_id: str
    span_id: str
    context: SpanContext
    job_id: str
    errors: tuple[SpanFault, ...] = ()
    job_parent: str = ""  # no job_id: the span id its job span may have (``jobs_from_parents``)

    kind: ClassVar[str] = "error"


SpanRecord = RunSpan | JobSpan | LlmSpan | ExternalSpan | ErrorSpan
RECORD_KINDS: dict[str, type[SpanRecord]] = {
    kind.kind: kind for kind in (RunSpan, JobSpan, LlmSpan, ExternalSpan, ErrorSpan)
}
_OUTSIDE_FIELDS = frozenset(("trace_id", "span_id", "context", "job_id", "errors"))
_TIME_FIELDS = frozenset(("occurred_at", "started_at", "finished_at", "requested_at"))


def record_to_json(record: SpanRecord) -> dict[str, Any]:
    """The JSON kept for a span that waits for its run span (``PendingSpan.record``); the trace
    and span ids are stored beside it. ``record_from_json`` reads it back."""
    return {
        "kind": record.kind,
        "job_id": getattr(record, "job_id", ""),
        "context": {
            "tenant": record.context.tenant,
            "run_id": record.context.run_id,
            "project": record.context.project,
        },
        "fields": {
            f.name: _json_value(getattr(record, f.name))
            for f in fields(record)
            if f.name not in _OUTSIDE_FIELDS
        },
        "errors": [
            {f.name: _json_value(getattr(fault, f.name)) for f in fields(fault)}
            for fault in record.errors
        ],
    }


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def record_from_json(trace_id: str, span_id: str, data: dict[str, Any]) -> SpanRecord:
    kind = RECORD_KINDS[data["kind"]]
    # Values come back as JSON gave them (the types record_to_json wrote); times re-parsed.
    values: dict[str, Any] = {
        k: datetime.fromisoformat(v) if k in _TIME_FIELDS and v else v
        for k, v in data["fields"].items()
    }
    if data["kind"] != "run":
        values["job_id"] = data["job_id"]
    values["errors"] = tuple(
        SpanFault(**{**fault, "occurred_at": datetime.fromisoformat(fault["occurred_at"])})
        for fault in data.get("errors", ())
    )
    return kind(
        trace_id=trace_id, span_id=span_id, context=SpanContext(**data["context"]), **values
    )


def jobs_from_parents(records: list[SpanRecord]) -> list[SpanRecord]:
    """``records`` with the job of each call or error whose job span came in another request
    taken from the job spans among them (a span's ``job_parent``), and the step and attempt of
    its errors with it. The spans of a run wait together for its run span, so they meet here."""
    jobs = {(r.trace_id, r.span_id): r for r in records if isinstance(r, JobSpan)}
    for owner in list(jobs.values()):
        for span_id in owner.covers:
            jobs.setdefault((owner.trace_id, span_id), owner)
    if not jobs:
        return records
    resolved: list[SpanRecord] = []
    for record in records:
        job = (
            jobs.get((record.trace_id, record.job_parent))
            if isinstance(record, LlmSpan | ExternalSpan | ErrorSpan) and record.job_parent
            else None
        )
        if job is not None and isinstance(record, LlmSpan | ExternalSpan | ErrorSpan):
            faults = tuple(
                replace(f, step_name=f.step_name or job.step_name or "", attempt=job.attempt)
                if f.attempt is None
                else f
                for f in record.errors
            )
            record = replace(record, job_id=job.job_id, job_parent="", errors=faults)
        resolved.append(record)
    return resolved


@dataclass(frozen=True)
class RejectedSpan:
    trace_id: str
    span_id: str
    name: str
    reason: str


def _status(raw: Any, code: int) -> str:
    if isinstance(raw, str) and raw.strip().lower() in STATUS_NAMES:
        return STATUS_NAMES[raw.strip().lower()]
    return "Failed" if code == _ERROR else "Succeeded"


def _duration(attrs: dict[str, Any], key: str, span: FlatSpan) -> int | None:
    given = _int(attrs.get(key))
    if given is not None and given >= 0:
        return given
    if span.start and span.end and span.end >= span.start:
        return int((span.end - span.start).total_seconds() * 1000)
    return None


_CONTEXT_KEYS = frozenset((*TENANT_KEYS, "run.id", *PROJECT_KEYS))
_NOBODY = SpanContext()


def _context_from(attrs: dict[str, Any]) -> SpanContext:
    if _CONTEXT_KEYS.isdisjoint(attrs):  # most spans (a run's calls) name nobody themselves
        return _NOBODY
    return SpanContext(
        tenant=str(_first(attrs, TENANT_KEYS) or ""),
        run_id=str(attrs.get("run.id") or ""),
        project=str(_first(attrs, PROJECT_KEYS) or ""),
    )


def spans_map(
    spans: list[FlatSpan], *, latest: datetime | None = None
) -> tuple[list[SpanRecord], list[RejectedSpan]]:
    """Records for every usable span, and the reason for every span that cannot be used. A span
    may end at ``latest`` at the most (the caller's now plus the clock skew it tolerates); None:
    no bound."""
    tree = _Tree(spans)
    trace_runs: dict[str, SpanContext] = {}
    several: set[str] = set()  # traces with several run spans here: each span takes its own
    for span in spans:
        if span.name == RUN_SPAN and span.attrs.get("run.id"):
            if span.trace_id in trace_runs:
                several.add(span.trace_id)
            trace_runs.setdefault(span.trace_id, _context_from(span.attrs))
    records: list[SpanRecord] = []
    rejected: list[RejectedSpan] = []
    covered: dict[tuple[str, str], list[str]] = {}  # job span -> the non-record spans under it
    resources: dict[int, SpanContext] = {}  # spans of a resource share its attribute dict
    run_ids: dict[str, str] = {}  # checked run ids (a trace's spans repeat its run id)
    contexts: dict[tuple[str, str, str], SpanContext] = {}  # one object per distinct context
    for span in spans:
        if span.trace_id in several:
            run = tree.run_span(span)
            # Outside every run span here: the trace's first run (its route's, as later).
            inherited = trace_runs[span.trace_id] if run is None else _context_from(run.attrs)
        else:
            inherited = trace_runs.get(span.trace_id, _NOBODY)
        resource = resources.get(id(span.resource))
        if resource is None:
            resource = resources[id(span.resource)] = _context_from(span.resource)
        context = _context_from(span.attrs)
        run_id = context.run_id or inherited.run_id
        try:
            if run_id:
                checked = run_ids.get(run_id)
                if checked is None:
                    checked = _identifier(run_id, "run.id")
                    run_ids[run_id] = checked  # only ids that passed are remembered
                run_id = checked
            key = (
                context.tenant or inherited.tenant or resource.tenant,
                run_id,
                context.project or inherited.project or resource.project,
            )
            context = contexts.get(key) or contexts.setdefault(key, SpanContext(*key))
            record = _record(span, context, tree, latest)
        except ValueError as problem:
            rejected.append(RejectedSpan(span.trace_id, span.span_id, span.name, str(problem)))
            continue
        if record is not None:
            records.append(record)
        elif (job := tree.job_span(span)) is not None:
            covered.setdefault((job.trace_id, job.span_id), []).append(span.span_id)
    if covered:
        records = [
            replace(r, covers=tuple(covered.get((r.trace_id, r.span_id), ())))
            if isinstance(r, JobSpan) and (r.trace_id, r.span_id) in covered
            else r
            for r in records
        ]
    return records, rejected


class _Tree:
    """The request's spans by (trace id, span id), to find the job span enclosing a span; the
    job id of each job span is checked once (its calls all ask for it)."""

    def __init__(self, spans: list[FlatSpan]) -> None:
        self.by_id = {(s.trace_id, s.span_id): s for s in spans}
        self._job_ids: dict[int, str] = {}
        self._above_usage: set[tuple[str, str]] | None = None

    def encloses_usage(self, span: FlatSpan) -> bool:
        """Whether a span under ``span`` in this request reports token usage."""
        if self._above_usage is None:
            above: set[tuple[str, str]] = set()
            for other in self.by_id.values():
                if _USAGE_KEYS.isdisjoint(other.attrs):
                    continue
                parent_id = other.parent_span_id
                for _ in range(64):  # bounded, as in job_span
                    key = (other.trace_id, parent_id)
                    if not parent_id or key in above:
                        break
                    above.add(key)
                    parent = self.by_id.get(key)
                    if parent is None:
                        break
                    parent_id = parent.parent_span_id
            self._above_usage = above
        return (span.trace_id, span.span_id) in self._above_usage

    def job_span(self, span: FlatSpan) -> FlatSpan | None:
        by_id = self.by_id
        parent = by_id.get((span.trace_id, span.parent_span_id))
        for _ in range(64):  # bounded: parent chains in bad input may loop
            if parent is None:
                return None
            if parent.name == JOB_SPAN and parent.attrs.get("job.id"):
                return parent
            parent = by_id.get((parent.trace_id, parent.parent_span_id))
        return None

    def outer_parent(self, span: FlatSpan) -> str:
        """The id of ``span``'s nearest ancestor that is not in this request (its parent, when
        that is not here either): a job span sent later must be that span, as every span
        between them came here; "" for a span whose ancestors all came here (a root among
        them)."""
        by_id = self.by_id
        parent_id = span.parent_span_id
        for _ in range(64):  # bounded, as in job_span
            if not parent_id:
                return ""
            parent = by_id.get((span.trace_id, parent_id))
            if parent is None:
                return parent_id
            parent_id = parent.parent_span_id
        return ""

    def run_span(self, span: FlatSpan) -> FlatSpan | None:
        """The ``factory.run.execute`` span enclosing ``span`` (itself, for a run span)."""
        by_id = self.by_id
        current: FlatSpan | None = span
        for _ in range(64):
            if current is None:
                return None
            if current.name == RUN_SPAN and current.attrs.get("run.id"):
                return current
            current = by_id.get((current.trace_id, current.parent_span_id))
        return None

    def job_id(self, span: FlatSpan) -> str:
        """The checked id of the job span enclosing ``span``; "" when there is none or its id
        is not valid (the job span itself is rejected with the reason)."""
        parent = self.job_span(span)
        if parent is None:
            return ""
        job_id = self._job_ids.get(id(parent))
        if job_id is None:
            try:
                job_id = _identifier(parent.attrs["job.id"], "job.id")
            except ValueError:
                job_id = ""
            self._job_ids[id(parent)] = job_id
        return job_id


def _text(value: Any, limit: int) -> str | None:
    """A printable string cut to ``limit``, or None: control, format and separator characters
    become spaces (REST ingest refuses them; a span is not dropped for a descriptive field).
    PostgreSQL text cannot hold NUL, and spreadsheets and pages cannot show the others."""
    if value in (None, ""):
        return None
    text = str(value)[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " for c in text)
    return text.strip() or None


def _identifier(value: Any, name: str) -> str:
    """A run or job id under the rule of every ingest path (``usage.domain.ids``)."""
    try:
        return id_check(str(value), run=name == "run.id")
    except ValueError as problem:
        raise ValueError(f"{name} {problem}") from None


def _count(attrs: dict[str, Any], keys: tuple[str, ...], name: str) -> int | None:
    """The token count under the first of ``keys`` the span has (None: none, or not a whole
    number); ValueError beyond ``MAX_TOKENS``."""
    value = attrs.get(keys[0])
    if type(value) is not int:  # nearly every span: the current name, an integer
        value = _int(_first(attrs, keys))
    if value is not None and not 0 <= value <= MAX_TOKENS:
        raise ValueError(f"{name} must be between 0 and {MAX_TOKENS}")
    return value


def _times(span: FlatSpan, latest: datetime | None) -> tuple[datetime, datetime]:
    """Start and end of a span that must have both, within sensible bounds."""
    if span.start is None or span.end is None:
        raise ValueError("span without a start or end time")
    if span.start < EARLIEST:
        raise ValueError("span starts before 2000")
    if latest is not None and span.end > latest:
        raise ValueError("span ends in the future")
    return span.start, span.end


def _clamped_duration(attrs: dict[str, Any], key: str, span: FlatSpan) -> int | None:
    duration = _duration(attrs, key, span)
    return None if duration is None else min(duration, MAX_DURATION_MS)


def _record(
    span: FlatSpan,
    context: SpanContext,
    tree: _Tree,
    latest: datetime | None,
) -> SpanRecord | None:
    record = _usage_record(span, context, tree, latest)
    if span.exceptions or span.status_code == _ERROR:
        job = span if span.name == JOB_SPAN else tree.job_span(span)
        faults = span_faults(span, job, latest)
        if faults and record is None:
            _times(span, latest)
            record = ErrorSpan(span.trace_id, span.span_id, context, tree.job_id(span), faults)
        elif faults and record is not None:
            record = replace(record, errors=faults)
    if isinstance(record, LlmSpan | ExternalSpan | ErrorSpan) and not record.job_id:
        # Its job span may come in another request (an exporter sends a span when it ends,
        # so a long job's calls go first): keep where to look for it.
        outer = tree.outer_parent(span)
        if outer:
            record = replace(record, job_parent=outer)
    return record


def _usage_record(
    span: FlatSpan,
    context: SpanContext,
    tree: _Tree,
    latest: datetime | None,
) -> SpanRecord | None:
    if span.name == RUN_SPAN:
        return run_span_map(span, context, latest)
    if span.name == JOB_SPAN:
        return job_span_map(span, context, latest)
    if span.name.startswith(EXTERNAL_PREFIX):
        # An external call that reports token usage is a model call: an LLM call (which the
        # waterfall shows among the external calls), so its cost counts (it was dropped) -
        # unless a span under it here reports the usage itself (an instrumented client's
        # call: counting both doubled it), or it names no model (kept as the external call).
        if not tree.encloses_usage(span):
            try:
                call = llm_span_map(span, context, lambda: tree.job_id(span), latest)
            except ValueError:
                call = None
            if call is not None:
                return call
        return external_span_map(span, context, tree.job_id(span), latest)
    return llm_span_map(span, context, lambda: tree.job_id(span), latest)


def run_span_map(span: FlatSpan, context: SpanContext, latest: datetime | None) -> RunSpan:
    attrs = span.attrs
    if not attrs.get("run.id"):
        raise ValueError("factory.run.execute span without a run.id attribute")
    context = SpanContext(context.tenant, _identifier(context.run_id, "run.id"), context.project)
    start, end = _times(span, latest)
    failure = (
        attrs.get("run.failure_type")
        or attrs.get("error.type")
        or (span.status_message if span.status_code == _ERROR else None)
    )
    return RunSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        context=context,
        status=_status(attrs.get("run.status"), span.status_code),
        template_recipe_id=_text(attrs.get("run.template_recipe_id"), TEMPLATE_LENGTH),
        run_type=_text(attrs.get("run.type") or attrs.get("run.run_type"), RUN_TYPE_LENGTH),
        requested_at=start,
        started_at=start,
        finished_at=end,
        duration_ms=_clamped_duration(attrs, "run.duration_ms", span),
        failure_type=_text(failure, FAILURE_TYPE_LENGTH),
    )


def job_span_map(span: FlatSpan, context: SpanContext, latest: datetime | None) -> JobSpan:
    attrs = span.attrs
    if not attrs.get("job.id"):
        raise ValueError("factory.job.execute span without a job.id attribute")
    attempt = _int(attrs.get("job.attempt")) or 1
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"job.attempt must be between 1 and {MAX_ATTEMPT}")
    start, end = _times(span, latest)
    return JobSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        context=context,
        job_id=_identifier(attrs["job.id"], "job.id"),
        attempt=attempt,
        step_name=_text(attrs.get("job.step_name"), STEP_NAME_LENGTH),
        status=_status(attrs.get("job.status"), span.status_code),
        started_at=start,
        finished_at=end,
        duration_ms=_clamped_duration(attrs, "job.duration_ms", span),
        failure_type=_text(
            attrs.get("job.failure_type") or attrs.get("error.type"), FAILURE_TYPE_LENGTH
        ),
    )


_EXTERNAL_STATUS: dict[Status.StatusCode.ValueType, str] = {
    Status.STATUS_CODE_ERROR: "error",
    Status.STATUS_CODE_OK: "ok",
}


def external_span_map(
    span: FlatSpan, context: SpanContext, job_id: str, latest: datetime | None
) -> ExternalSpan:
    start, _ = _times(span, latest)
    return ExternalSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        context=context,
        job_id=job_id,
        service=_text(span.name[len(EXTERNAL_PREFIX) :], SERVICE_LENGTH) or "unknown",
        started_at=start,
        duration_ms=_clamped_duration(span.attrs, "duration_ms", span) or 0,
        status=_EXTERNAL_STATUS.get(span.status_code, "unset"),
        error=_text(span.status_message or span.attrs.get("error.type"), ERROR_LENGTH) or "",
    )


def llm_span_map(
    span: FlatSpan,
    context: SpanContext,
    job_id: Callable[[], str],
    latest: datetime | None,
) -> LlmSpan | None:
    """The LLM call of a span with token usage; None for a span without any (not a usage span:
    nothing to take from it, nothing lost). ``job_id`` is asked only for a usage span."""
    attrs = span.attrs
    if _USAGE_KEYS.isdisjoint(attrs):
        return None
    if (
        attrs.get("gen_ai.operation.name") in FRAMEWORK_OPERATIONS
        and span.kind != Span.SpanKind.SPAN_KIND_CLIENT
    ):
        return None  # a local agent's usage totals its model calls, each a span of its own
    input_tokens = _count(attrs, INPUT_KEYS, "input tokens")
    output_tokens = _count(attrs, OUTPUT_KEYS, "output tokens")
    if input_tokens is None and output_tokens is None:
        return None
    model = _text(_first(attrs, MODEL_KEYS), MODEL_LENGTH)
    if not model:
        raise ValueError(
            "LLM span with token usage but no gen_ai.request.model / "
            "gen_ai.response.model / llm.model attribute"
        )
    cached = _count(attrs, CACHE_READ_KEYS, "cache read tokens") or 0
    written = _count(attrs, CACHE_WRITE_KEYS, "cache creation tokens") or 0
    input_tokens = input_tokens or 0
    if cached + written > input_tokens:
        # Some instrumentations (Anthropic's own counts) report input tokens without the cached
        # ones; the convention here, as in OpenTelemetry GenAI, is that input includes them.
        input_tokens += cached + written
    start, end = _times(span, latest)
    return LlmSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        context=context,
        job_id=job_id(),
        provider=(_text(_first(attrs, PROVIDER_KEYS), PROVIDER_LENGTH) or "unknown").lower(),
        model=model,
        operation=_text(attrs.get("gen_ai.operation.name"), OPERATION_LENGTH) or "generation",
        input_tokens=input_tokens,
        output_tokens=output_tokens or 0,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        occurred_at=end,
        started_at=start,
        duration_ms=_clamped_duration(attrs, "duration_ms", span) or 0,
    )


def bounded_text(value: Any, limit_bytes: int) -> str:
    """Text of at most ``limit_bytes`` UTF-8 bytes, cut with ``TRUNCATED_MARKER`` when longer.
    Line breaks and tabs are kept (stack traces); NUL and other control characters become
    spaces (PostgreSQL text cannot hold NUL, pages cannot show the others)."""
    if value in (None, ""):
        return ""
    text = value if isinstance(value, str) else str(value)
    text = text[: limit_bytes + 1]  # never more characters than bytes kept
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c in "\n\t" else " " for c in text)
    data = text.encode()
    if len(data) <= limit_bytes:
        return text
    room = limit_bytes - len(TRUNCATED_MARKER.encode())
    return data[:room].decode(errors="ignore") + TRUNCATED_MARKER


def span_faults(
    span: FlatSpan, job: FlatSpan | None, latest: datetime | None
) -> tuple[SpanFault, ...]:
    """The errors ``span`` reports: its ``exception`` events, else its error status when it has
    something to say (a message or an error type); ``job`` is its job span, if known."""
    step = _text(job.attrs.get("job.step_name"), STEP_NAME_LENGTH) if job else None
    attempt = _int(job.attrs.get("job.attempt")) or 1 if job else None
    if attempt is not None and not 1 <= attempt <= MAX_ATTEMPT:
        attempt = None
    name = _text(span.name, SPAN_NAME_LENGTH) or ""
    end = span.end or span.start

    def when(time: datetime | None) -> datetime | None:
        if time is not None and time >= EARLIEST and (latest is None or time <= latest):
            return time
        return end

    faults = []
    for seq, event in enumerate(span.exceptions):
        at = when(event.time)
        if at is None:
            continue
        faults.append(
            SpanFault(
                seq=seq,
                source="exception",
                occurred_at=at,
                type=_text(event.attrs.get("exception.type"), ERROR_TYPE_LENGTH) or "",
                message=bounded_text(event.attrs.get("exception.message"), ERROR_MESSAGE_BYTES),
                stacktrace=bounded_text(event.attrs.get("exception.stacktrace"), STACKTRACE_BYTES),
                span_name=name,
                step_name=step or "",
                attempt=attempt,
            )
        )
    if faults or span.exceptions or span.status_code != _ERROR or end is None:
        return tuple(faults)
    attrs = span.attrs
    error_type = _text(
        attrs.get("error.type") or attrs.get("job.failure_type") or attrs.get("run.failure_type"),
        ERROR_TYPE_LENGTH,
    )
    message = bounded_text(span.status_message, ERROR_MESSAGE_BYTES)
    if not error_type and not message:
        return ()
    return (
        SpanFault(
            seq=0,
            source="status",
            occurred_at=end,
            type=error_type or "",
            message=message,
            stacktrace="",
            span_name=name,
            step_name=step or "",
            attempt=attempt,
        ),
    )
