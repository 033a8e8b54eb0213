"""OTLP metrics to data points, counter increases and rollups (pure: bytes and dataclasses in,
dataclasses out; no database, no Django).

- ``metrics_decode``: an ExportMetricsServiceRequest from protobuf or OTLP/JSON (exemplar ids are
  hex there, as in traces), its data points counted from the wire before it is parsed, so an
  oversized request costs no parse (``TooManyPoints``, a 413).
- ``metrics_flatten``: one ``PointIn`` per data point of a gauge, a sum or an explicit-bucket
  histogram, labelled with its attributes plus the resource's ``service.name`` and
  ``service.instance.id``, and classified by the seed's catalogue (``category_of``). Exponential
  histograms and summaries, points without a time, non-finite values and histograms whose
  buckets do not fit their bounds are ``RejectedPoints``.
- ``increases``: a cumulative series' points as increases; a new start time or (monotonic) a
  value below the previous one is a counter reset and the increase is then the new value; a
  point not newer than the last one seen adds nothing. Delta points are taken as they are.
- ``rollups`` / ``rollup_merge``: the aggregate of points per series and minute or hour (gauges
  min/max/total/samples/last by time; sums increase; histograms merged bucket-wise when the
  bounds match), merged in any order to the same result (``runtime.services.metrics`` does the
  same merge in SQL).

Token and cost instruments are ``usage`` here and stay measurements: money comes from spans.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
)

from factory_portal.periods import EARLIEST
from usage.domain.otlp import OtlpDecodeError, OtlpMediaTypeError, OtlpTooLarge
from usage.domain.otlp_wire import json_object, json_parse, protobuf_parse, wire_fields, wire_varint

GAUGE, SUM, HISTOGRAM = "gauge", "sum", "histogram"
RUNTIME, USAGE, UNKNOWN = "runtime", "usage", "unknown"

# The seed's catalogue (the factory runtime's telemetry contract): run, job, queue, worker metrics.
RUNTIME_INSTRUMENTS = frozenset(
    {
        "run_duration_seconds",
        "run_success_total",
        "run_failure_total",
        "run_cancelled_total",
        "jobs_in_queue",
        "jobs_processing",
        "job_duration_seconds",
        "retries_total",
        "queue_depth",
        "queue_processing_rate",
        "dlq_size",
        "worker_cpu_usage",
        "worker_memory_usage",
        "worker_errors_total",
    }
)
USAGE_PREFIXES = ("tokens_", "cost_")
TENANT_LABEL = "tenant_id"
TENANT_RESOURCE_KEYS = ("tenant.id", "run.tenant_id")
SERVICE_KEY, INSTANCE_KEY = "service.name", "service.instance.id"

NAME_LENGTH = 255
UNIT_LENGTH = 64
LABEL_KEY_LENGTH = 100
LABEL_VALUE_LENGTH = 256
SERVICE_LENGTH = 200
# Attribute values per data point on average, plus some for resources and small requests.
VALUES_PER_POINT = 64
VALUES_EXTRA = 4096
MAX_BUCKETS = 256
MAX_COUNT = 2**63 - 1


class TooManyPoints(OtlpTooLarge):
    """More data points in one request than allowed (``count`` None: counting stopped early)."""

    title = "Too many data points"

    def __init__(self, limit: int, count: int | None) -> None:
        got = f"{count:,}" if count is not None else f"more than {limit:,}"
        super().__init__(
            f"At most {limit:,} data points per request; this one has {got}. Export more often "
            "or in smaller batches (the collector's send_batch_max_size)."
        )


class TooManyValues(OtlpTooLarge):
    title = "Too many attribute values"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit:,} attribute values in this request ({VALUES_PER_POINT} per data "
            f"point on average, plus {VALUES_EXTRA:,})."
        )


def category_of(name: str) -> str:
    """``runtime`` for the seed's run, job, queue and worker instruments, ``usage`` for token and
    cost ones (counted, never money), ``unknown`` for anything else (kept and listed)."""
    if name in RUNTIME_INSTRUMENTS:
        return RUNTIME
    if name.startswith(USAGE_PREFIXES):
        return USAGE
    return UNKNOWN


# --- decoding ------------------------------------------------------------------------------------


_DATA_FIELDS = frozenset(
    Metric.DESCRIPTOR.fields_by_name[name].number
    for name in ("gauge", "sum", "histogram", "exponential_histogram", "summary")
)


EARLIEST_NS = int(EARLIEST.timestamp()) * 1_000_000_000  # time_unix_nano of 2000-01-01


def _points_in(body: bytes, start: int, end: int, fields: int) -> tuple[int, int]:
    """The data points (field 1) of a gauge, sum or histogram message in ``body[start:end]`` and
    the fields walked: ``wire_fields`` unrolled for the one level with thousands of fields. Stops
    once ``fields`` (what is left of the budget) have been walked."""
    count = walked = 0
    pos = start
    while pos < end:
        walked += 1
        if walked > fields:
            break
        if body[pos] == 0x0A:  # field 1, length-delimited: a data point
            count += 1
            pos += 1
        else:
            key, pos = wire_varint(body, pos)
            wire = key & 7
            if wire == 0:
                _, pos = wire_varint(body, pos)
                continue
            if wire == 1:
                pos += 8
                continue
            if wire == 5:
                pos += 4
                continue
            if wire != 2:
                raise OtlpDecodeError(f"the body is not an OTLP protobuf message: wire type {wire}")
        length, pos = wire_varint(body, pos)
        pos += length
    if pos > end:
        raise OtlpDecodeError("the body is not an OTLP protobuf message: a truncated field")
    return count, walked


def _protobuf_points_check(body: bytes, limit: int) -> None:
    """Count the data points of a protobuf request from its wire format and stop at ``limit``;
    every field walked at the container levels counts against a budget too (bounded work for a
    body of millions of empty resources, scopes or metrics)."""
    budget = 6 * limit + 64
    walked = points = 0

    def walk(start: int, end: int, numbers: frozenset[int]) -> Iterator[tuple[int, int]]:
        nonlocal walked
        for number, field_start, field_end in wire_fields(body, start, end):
            walked += 1
            if walked > budget:
                raise TooManyPoints(limit, None)
            if number in numbers and field_start >= 0:
                yield field_start, field_end

    one = frozenset({1})
    two = frozenset({2})
    for resource in walk(0, len(body), one):
        for scope in walk(*resource, two):
            for metric in walk(*scope, two):
                for data in walk(*metric, _DATA_FIELDS):
                    found, fields = _points_in(body, *data, budget - walked)
                    points += found
                    walked += fields
                    if points > limit or walked > budget:
                        raise TooManyPoints(limit, None)


def _listed(node: Any, *keys: str) -> list[Any]:
    if isinstance(node, dict):
        for key in keys:
            value = node.get(key)
            if isinstance(value, list):
                return value
    return []


_JSON_DATA_KEYS = (
    ("gauge",),
    ("sum",),
    ("histogram",),
    ("exponentialHistogram", "exponential_histogram"),
    ("summary",),
)


def _json_points(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in _listed(document, "resourceMetrics", "resource_metrics"):
        for scope in _listed(resource, "scopeMetrics", "scope_metrics"):
            for metric in _listed(scope, "metrics"):
                if not isinstance(metric, dict):
                    continue
                for keys in _JSON_DATA_KEYS:
                    for key in keys:
                        for point in _listed(metric.get(key), "dataPoints", "data_points"):
                            if isinstance(point, dict):
                                yield point


_HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})*")
_ID_KEYS = ("traceId", "spanId", "trace_id", "span_id")


def _exemplar_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON writes exemplar trace and span ids as hex; protobuf's parser reads base64."""
    for point in _json_points(document):
        for exemplar in _listed(point, "exemplars"):
            if not isinstance(exemplar, dict):
                continue
            for key in _ID_KEYS:
                value = exemplar.get(key)
                if isinstance(value, str):
                    if not _HEX_RE.fullmatch(value):
                        raise OtlpDecodeError(
                            f"exemplar {key} {value[:40]!r} is not hex (OTLP/JSON ids are hex)"
                        )
                    exemplar[key] = base64.b64encode(bytes.fromhex(value)).decode()


def metrics_decode(
    body: bytes, content_type: str, *, max_points: int = 10_000
) -> ExportMetricsServiceRequest:
    """The request in ``body``; raises OtlpDecodeError for a body that is not OTLP,
    OtlpMediaTypeError for a media type OTLP/HTTP does not use, and TooManyPoints for more than
    ``max_points`` data points (counted before anything is built)."""
    content_type = content_type.split(";", 1)[0].strip().lower()
    request = ExportMetricsServiceRequest()
    if content_type == "application/x-protobuf":
        _protobuf_points_check(body, max_points)
        protobuf_parse(request, body)
        return request
    if content_type == "application/json":
        document = json_object(body, "ExportMetricsServiceRequest")
        count = sum(1 for _ in _json_points(document))
        if count > max_points:
            raise TooManyPoints(max_points, count)
        _exemplar_ids_to_base64(document)
        json_parse(document, request)
        return request
    raise OtlpMediaTypeError(
        f"Content-Type {content_type or '(none)'!r} is not supported; OTLP/HTTP uses "
        "application/x-protobuf or application/json"
    )


# --- flattening ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesIn:
    """What the points of one series share. ``key`` names it (name, kind and labels);
    ``tenant`` is the one its ``tenant_id`` label or resource names ("" for none)."""

    key: str
    name: str
    kind: str
    category: str
    unit: str
    monotonic: bool
    cumulative: bool
    labels: Mapping[str, Any]
    tenant: str
    service: str
    instance: str


class PointIn(NamedTuple):
    """One data point of ``series``. Gauges and sums carry ``value``; histograms
    ``count``/``sum``/``bucket_counts`` over ``bounds`` (and min/max when reported). Times are
    nanoseconds since the epoch (``start_ns`` 0: not reported). A named tuple, as the other
    per-point values here: a frozen dataclass costs a microsecond more to build each."""

    series: SeriesIn
    time_ns: int
    start_ns: int = 0
    value: float | None = None
    count: int | None = None  # type: ignore[assignment]  # OTLP's name over tuple.count
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bounds: tuple[float, ...] | None = None
    bucket_counts: tuple[int, ...] | None = None

    @property
    def key(self) -> str:
        return self.series.key

    @property
    def name(self) -> str:
        return self.series.name

    @property
    def kind(self) -> str:
        return self.series.kind

    @property
    def cumulative(self) -> bool:
        return self.series.cumulative

    @property
    def monotonic(self) -> bool:
        return self.series.monotonic

    @property
    def tenant(self) -> str:
        return self.series.tenant

    @property
    def time(self) -> datetime:
        return ns_time(self.time_ns)


@dataclass(frozen=True, slots=True)
class RejectedPoints:
    name: str
    reason: str
    points: int


@dataclass(frozen=True)
class MetricsBatch:
    points: list[PointIn]
    rejected: list[RejectedPoints]
    unknown: tuple[str, ...]  # instruments outside the catalogue: kept, listed in the answer
    usage: tuple[str, ...]  # token and cost instruments: kept, never money


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_time(nanos: int) -> datetime:
    """Nanoseconds since the epoch as a time, cut to whole microseconds (exactly: through a
    float, 2026's nanoseconds would round to the neighbouring microsecond now and then)."""
    return EPOCH + timedelta(microseconds=nanos // 1000)


class _Budget:
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
    if kind == "string_value":
        return _clean(any_value.string_value, LABEL_VALUE_LENGTH)
    if kind == "array_value":
        budget.take(len(any_value.array_value.values))
        return [_value(v, budget) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        budget.take(len(any_value.kvlist_value.values))
        return {
            _clean(kv.key, LABEL_KEY_LENGTH): _value(kv.value, budget)
            for kv in any_value.kvlist_value.values
        }
    if kind == "bytes_value":
        return any_value.bytes_value.hex()[:LABEL_VALUE_LENGTH]
    if kind == "double_value" and not math.isfinite(any_value.double_value):
        return str(any_value.double_value)
    return getattr(any_value, kind)


def _attributes(key_values: Any, budget: _Budget) -> dict[str, Any]:
    budget.take(len(key_values))
    return {_clean(kv.key, LABEL_KEY_LENGTH): _value(kv.value, budget) for kv in key_values}


def _clean(text: str, length: int) -> str:
    """``text`` cut to ``length`` without NUL characters (PostgreSQL text and jsonb hold none)."""
    return text.replace("\x00", "")[:length]


def series_key(name: str, kind: str, labels: Mapping[str, Any]) -> str:
    """The series' identity: a digest of its name, kind and labels (in key order)."""
    text = json.dumps([name, kind, sorted(labels.items())], separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Flattening:
    budget: _Budget
    latest_ns: int
    points: list[PointIn] = field(default_factory=list)
    rejected: dict[tuple[str, str], int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    usage: set[str] = field(default_factory=set)

    def reject(self, name: str, reason: str, points: int = 1) -> None:
        if points:
            self.rejected[(name, reason)] = self.rejected.get((name, reason), 0) + points


def metrics_flatten(
    request: ExportMetricsServiceRequest, *, latest: datetime | None = None
) -> MetricsBatch:
    """The request's data points, rejected points by instrument and reason, and the unknown and
    token/cost instruments seen. Points later than ``latest`` (clock skew) are rejected. Raises
    TooManyValues beyond ``VALUES_PER_POINT`` attribute values per point on average."""
    count = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    count += len(getattr(metric, kind).data_points)
    state = _Flattening(
        budget=_Budget(VALUES_PER_POINT * count + VALUES_EXTRA),
        latest_ns=int(latest.timestamp() * 1e9) if latest else 2**63,
    )
    for resource_metrics in request.resource_metrics:
        attributes = resource_metrics.resource.attributes
        resource = _attributes(attributes, state.budget)
        signature = tuple(map(_serialize, attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _metric(metric, resource, state, signature)
    return MetricsBatch(
        points=state.points,
        rejected=[RejectedPoints(n, r, c) for (n, r), c in sorted(state.rejected.items())],
        unknown=tuple(sorted(state.unknown)),
        usage=tuple(sorted(state.usage)),
    )


def _text(value: Any, length: int) -> str:
    return _clean(value, length) if isinstance(value, str) else ""


# The series of recent requests by resource, instrument and attributes (as protobuf bytes): an
# exporter sends the same series every interval, and converting labels and hashing a series key
# is most of the cost of a point. Bounded: emptied when full. Values: the series and the
# attribute values converting its labels takes from the request's budget (taken again on a hit).
SERIES_CACHE_SIZE = 50_000
_serialize = KeyValue.SerializeToString
_series_cache: dict[tuple[Any, ...], tuple[SeriesIn, int]] = {}


def _metric(
    metric: Metric, resource: dict[str, Any], state: _Flattening, resource_key: tuple[bytes, ...]
) -> None:
    kind = metric.WhichOneof("data")
    name = _clean(metric.name, NAME_LENGTH + 1)
    if kind is None:
        return
    data = getattr(metric, kind)
    if kind in ("exponential_histogram", "summary"):
        plural = "exponential histograms" if kind == "exponential_histogram" else "summaries"
        state.reject(name, f"{plural} are not supported", len(data.data_points))
        return
    if not name or len(name) > NAME_LENGTH:
        state.reject(name[:64], f"an instrument name must be 1-{NAME_LENGTH} characters")
        return
    category = category_of(name)
    if category == UNKNOWN:
        state.unknown.add(name)
    elif category == USAGE:
        state.usage.add(name)
    cumulative = kind != "gauge" and (
        data.aggregation_temporality != AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    )
    series_kind = {"gauge": GAUGE, "sum": SUM, "histogram": HISTOGRAM}[kind]
    common = (
        name,
        series_kind,
        category,
        _clean(metric.unit, UNIT_LENGTH),
        kind == "histogram" or (kind == "sum" and data.is_monotonic),
        cumulative,
    )
    resource_labels = {
        k: resource[k] for k in (SERVICE_KEY, INSTANCE_KEY) if resource.get(k) not in (None, "")
    }
    service = _text(resource.get(SERVICE_KEY), SERVICE_LENGTH)
    instance = _text(resource.get(INSTANCE_KEY), SERVICE_LENGTH)
    tenant = _tenant(resource)
    known: dict[tuple[bytes, ...], SeriesIn] = {}
    latest_ns, budget, append = state.latest_ns, state.budget, state.points.append
    make = _histogram_point if kind == "histogram" else _number_point
    for point in data.data_points:
        at = point.time_unix_nano
        if not at:
            state.reject(name, "a data point without time_unix_nano")
            continue
        if at > latest_ns:
            state.reject(name, "a data point in the future (check the exporter's clock)")
            continue
        if at < EARLIEST_NS:  # as events, spans and logs: nothing is measured before 2000
            state.reject(name, "a data point before 2000 (check the exporter's clock)")
            continue
        if point.start_time_unix_nano > at:
            state.reject(name, "a data point whose start time is after its time")
            continue
        if point.flags & 1:  # FLAG_NO_RECORDED_VALUE: a staleness marker, nothing measured
            continue
        attributes = point.attributes
        budget.take(len(attributes))
        signature = tuple(map(_serialize, attributes))
        series = known.get(signature)
        if series is None:
            cache_key = (resource_key, common, signature)
            cached = _series_cache.get(cache_key)
            if cached is not None:
                series, taken = cached
                state.budget.take(taken)
            else:
                left = state.budget.left
                attrs = _attributes(attributes, state.budget)
                labels = {**attrs, **resource_labels}
                named = attrs.get(TENANT_LABEL)
                series = SeriesIn(
                    series_key(name, series_kind, labels),
                    *common,
                    labels,
                    named if isinstance(named, str) and named else tenant,
                    service,
                    instance,
                )
                if len(_series_cache) >= SERIES_CACHE_SIZE:
                    _series_cache.clear()
                _series_cache[cache_key] = (series, left - state.budget.left)
            known[signature] = series
        made = make(point, series, state)
        if made is not None:
            append(made)


def _tenant(resource: Mapping[str, Any]) -> str:
    for key in TENANT_RESOURCE_KEYS:
        value = resource.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _number_point(point: NumberDataPoint, series: SeriesIn, state: _Flattening) -> PointIn | None:
    which = point.WhichOneof("value")
    if which is None:
        state.reject(series.name, "a data point without a value")
        return None
    value = float(point.as_double if which == "as_double" else point.as_int)
    if not math.isfinite(value):
        state.reject(series.name, "a value that is not a finite number")
        return None
    return PointIn(series, point.time_unix_nano, point.start_time_unix_nano, value)


_valid_bounds: dict[tuple[float, ...], bool] = {}  # a few distinct bounds: checked once each


def _bounds_valid(bounds: tuple[float, ...]) -> bool:
    """Finite and increasing."""
    valid = _valid_bounds.get(bounds)
    if valid is None:
        valid = all(math.isfinite(b) for b in bounds) and all(
            a < b for a, b in itertools.pairwise(bounds)
        )
        if len(_valid_bounds) >= 1024:
            _valid_bounds.clear()
        _valid_bounds[bounds] = valid
    return valid


def _histogram_point(
    point: HistogramDataPoint, series: SeriesIn, state: _Flattening
) -> PointIn | None:
    name = series.name
    bounds = tuple(point.explicit_bounds)
    counts = tuple(point.bucket_counts)
    if counts and len(counts) != len(bounds) + 1:
        state.reject(name, "a histogram whose bucket_counts are not one more than its bounds")
        return None
    if len(counts) > MAX_BUCKETS:
        state.reject(name, f"a histogram of more than {MAX_BUCKETS} buckets")
        return None
    if not _bounds_valid(bounds):
        state.reject(name, "histogram bounds that are not finite and increasing")
        return None
    total = sum(counts)
    if (counts and total != point.count) or point.count > MAX_COUNT:
        state.reject(name, "a histogram whose count is not the sum of its bucket counts")
        return None
    extremes = [
        value if present and math.isfinite(value) else None
        for present, value in (
            (point.HasField("sum"), point.sum),
            (point.HasField("min"), point.min),
            (point.HasField("max"), point.max),
        )
    ]
    return PointIn(
        series,
        point.time_unix_nano,
        point.start_time_unix_nano,
        count=point.count,
        sum=extremes[0] if extremes[0] is not None else (0.0 if not point.count else None),
        min=extremes[1],
        max=extremes[2],
        bounds=bounds if counts else None,
        bucket_counts=counts or None,
    )


# --- increases -----------------------------------------------------------------------------------


class CounterState(NamedTuple):
    """The last cumulative point seen of a series (``MetricSeries.last_*``): ``value`` is a sum's
    total or a histogram's count."""

    start_ns: int
    time_ns: int
    value: float
    sum: float | None = None
    counts: tuple[int, ...] | None = None


class Increase(NamedTuple):
    """What a point adds: a sum's ``value``; a histogram's ``count``, ``sum`` and buckets."""

    value: float | None = None
    count: int | None = None  # type: ignore[assignment]
    sum: float | None = None
    bucket_counts: tuple[int, ...] | None = None


def own_increase(point: PointIn) -> Increase:
    """What a delta point or a gauge adds: itself."""
    if point.kind == HISTOGRAM:
        return Increase(count=point.count, sum=point.sum, bucket_counts=point.bucket_counts)
    return Increase(value=point.value)


def _state_of(point: PointIn) -> CounterState:
    if point.kind == HISTOGRAM:
        return CounterState(
            point.start_ns, point.time_ns, float(point.count or 0), point.sum, point.bucket_counts
        )
    return CounterState(point.start_ns, point.time_ns, point.value or 0.0)


def _us(nanos: int) -> int:
    """Nanoseconds to the microseconds PostgreSQL keeps: a state read back from the database
    must match the point it was made from."""
    return nanos // 1000


def _is_reset(state: CounterState, point: PointIn) -> bool:
    if point.start_ns and state.start_ns and _us(point.start_ns) != _us(state.start_ns):
        return True
    if point.kind == HISTOGRAM:
        if (point.count or 0) < state.value:
            return True
        counts, before = point.bucket_counts, state.counts
        if counts is not None and before is not None:
            return len(counts) != len(before) or any(
                a < b for a, b in zip(counts, before, strict=True)
            )
        return (counts is None) != (before is None)
    return point.monotonic and (point.value or 0.0) < state.value


# A cumulative point whose counter started longer before it than this is a baseline when it
# is the first the series is seen with (or the first after a reset): its count happened before
# the portal saw it, not in the point's minute.
FIRST_POINT_WINDOW_NS = 10 * 60 * 10**9


def _from_start(point: PointIn) -> Increase:
    """What the first cumulative point of a series (or of a reset) adds: all it counted when
    its counter started within ``FIRST_POINT_WINDOW_NS`` of it, or when its start is unknown;
    nothing when it started long before (a process seen for the first time after three days
    counted them all as one minute's errors: a review found the spike). The collector's
    cumulativetodelta and Prometheus start from such a point the same way."""
    if point.start_ns and point.time_ns - point.start_ns > FIRST_POINT_WINDOW_NS:
        return Increase(0.0) if point.kind == SUM else Increase(count=0, sum=0.0)
    return own_increase(point)


def increase_of(state: CounterState | None, point: PointIn) -> tuple[Increase, CounterState | None]:
    """What ``point`` adds to its series after ``state`` (the series' last cumulative point),
    and the state after it. Delta points and gauges add themselves and leave the state."""
    if point.kind == GAUGE or not point.cumulative:
        return own_increase(point), state
    if state is None:
        return _from_start(point), _state_of(point)
    if _us(point.time_ns) <= _us(state.time_ns):  # a resent or late point: already counted
        return Increase(0.0) if point.kind == SUM else Increase(count=0, sum=0.0), state
    if _is_reset(state, point):
        return _from_start(point), _state_of(point)
    if point.kind == SUM:
        return Increase(value=(point.value or 0.0) - state.value), _state_of(point)
    counts, before = point.bucket_counts, state.counts
    buckets = (
        tuple(a - b for a, b in zip(counts, before, strict=True))
        if counts is not None and before is not None
        else None
    )
    sum_ = None if point.sum is None or state.sum is None else point.sum - state.sum
    return (
        Increase(count=(point.count or 0) - int(state.value), sum=sum_, bucket_counts=buckets),
        _state_of(point),
    )


def increases(
    state: CounterState | None, points: Iterable[PointIn]
) -> tuple[list[tuple[PointIn, Increase]], CounterState | None]:
    """The points of one series in time order with what each adds, and the state after them."""
    out = []
    for point in sorted(points, key=lambda p: p.time_ns):
        increase, state = increase_of(state, point)
        out.append((point, increase))
    return out, state


# --- rollups -------------------------------------------------------------------------------------

MINUTE_NS = 60 * 10**9
HOUR_NS = 3600 * 10**9


class Rollup(NamedTuple):
    """One series over one bucket (``MetricMinute`` / ``MetricHour``)."""

    samples: int = 0
    min: float | None = None
    max: float | None = None
    total: float | None = None
    last: float | None = None
    last_time_ns: int | None = None
    increase: float | None = None
    count: int | None = None  # type: ignore[assignment]
    sum: float | None = None
    bounds: tuple[float, ...] | None = None
    bucket_counts: tuple[int, ...] | None = None


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _pick(a: float | None, b: float | None, choose: Any) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))


def rollup_merge(a: Rollup, b: Rollup) -> Rollup:
    """Two aggregates of one series and bucket as one, whatever order they came in: the last
    value is the one of the latest time (the later one of equal times: ``b``), buckets add up
    when the bounds match (otherwise the first bounds and their buckets are kept)."""
    if a.last_time_ns is None or (b.last_time_ns is not None and b.last_time_ns >= a.last_time_ns):
        last, last_time = (b.last, b.last_time_ns) if b.last_time_ns is not None else (a.last, None)
    else:
        last, last_time = a.last, a.last_time_ns
    if a.bucket_counts is None:
        bounds, buckets = b.bounds, b.bucket_counts
    elif b.bucket_counts is None or a.bounds != b.bounds:
        bounds, buckets = a.bounds, a.bucket_counts
    else:
        bounds = a.bounds
        buckets = tuple(x + y for x, y in zip(a.bucket_counts, b.bucket_counts, strict=True))
    return Rollup(
        samples=a.samples + b.samples,
        min=_pick(a.min, b.min, min),
        max=_pick(a.max, b.max, max),
        total=_add(a.total, b.total),
        last=last,
        last_time_ns=last_time,
        increase=_add(a.increase, b.increase),
        count=_add(a.count, b.count),
        sum=_add(a.sum, b.sum),
        bounds=bounds,
        bucket_counts=buckets,
    )


def interval_extremes(point: PointIn) -> tuple[float | None, float | None]:
    """A histogram point's min and max as an interval's: a cumulative point's cover its whole
    life since its start, not the increase stored for it, so they are not kept (its rollups
    and percentiles were clamped to a lifetime's extremes; an OpenTelemetry review)."""
    if point.cumulative:
        return None, None
    return point.min, point.max


def point_rollup(point: PointIn, increase: Increase) -> Rollup:
    """A single point as an aggregate."""
    if point.kind == GAUGE:
        v = point.value
        return Rollup(1, v, v, v, v, point.time_ns)
    if point.kind == SUM:
        return Rollup(1, last=point.value, last_time_ns=point.time_ns, increase=increase.value)
    low, high = interval_extremes(point)
    return Rollup(
        1,
        min=low,
        max=high,
        count=increase.count,
        sum=increase.sum,
        bounds=point.bounds if increase.bucket_counts is not None else None,
        bucket_counts=increase.bucket_counts,
    )


def rollups(
    points: Iterable[tuple[PointIn, Increase]],
    width_ns: int,
    singles: dict[int, Rollup] | None = None,
) -> dict[tuple[str, int], Rollup]:
    """The aggregates of ``points`` per (series key, bucket start in ns) for buckets of
    ``width_ns`` (``MINUTE_NS``, ``HOUR_NS``): what folding them with ``rollup_merge`` in their
    order gives, computed a bucket at a time. ``singles``: the aggregates of buckets of one point
    by the id of its pair, shared between calls over the same ``points`` (a series' minute and
    hour are often one point: the same object, formatted once)."""
    groups: dict[tuple[str, int], list[tuple[PointIn, Increase]]] = {}
    for pair in points:
        point = pair[0]
        at = point.time_ns
        slot = (point.series.key, at - at % width_ns)
        group = groups.get(slot)
        if group is None:
            groups[slot] = [pair]
        else:
            group.append(pair)
    out = {}
    for slot, group in groups.items():
        if len(group) > 1:
            out[slot] = _aggregate(group)
        elif singles is None:
            out[slot] = point_rollup(*group[0])
        else:
            single = singles.get(id(group[0]))
            if single is None:
                single = singles[id(group[0])] = point_rollup(*group[0])
            out[slot] = single
    return out


def _latest(group: list[tuple[PointIn, Increase]]) -> PointIn:
    """The point of the latest time; of equal times the last one (``rollup_merge``'s rule)."""
    best = group[0][0]
    for point, _ in group:
        if point.time_ns >= best.time_ns:
            best = point
    return best


def _aggregate(group: list[tuple[PointIn, Increase]]) -> Rollup:
    first = group[0][0]
    if first.kind == GAUGE:
        values = [p.value for p, _ in group if p.value is not None]
        last = _latest(group)
        return Rollup(
            len(group),
            min(values, default=None),
            max(values, default=None),
            sum(values) if values else None,
            last.value,
            last.time_ns,
        )
    if first.kind == SUM:
        last = _latest(group)
        added = [i.value for _, i in group if i.value is not None]
        return Rollup(
            len(group),
            last=last.value,
            last_time_ns=last.time_ns,
            increase=sum(added) if added else None,
        )
    return _histogram_aggregate(group)


def _histogram_aggregate(group: list[tuple[PointIn, Increase]]) -> Rollup:
    """``rollup_merge`` folded over a histogram's points, in one pass."""
    bounds: tuple[float, ...] | None = None
    buckets: list[int] | None = None
    count: int | None = None
    total: float | None = None
    low: float | None = None
    high: float | None = None
    for point, increase in group:
        if increase.count is not None:
            count = increase.count if count is None else count + increase.count
        if increase.sum is not None:
            total = increase.sum if total is None else total + increase.sum
        point_low, point_high = interval_extremes(point)
        if point_low is not None and (low is None or point_low < low):
            low = point_low
        if point_high is not None and (high is None or point_high > high):
            high = point_high
        added = increase.bucket_counts
        if added is None:
            continue
        if buckets is None:
            bounds, buckets = point.bounds, list(added)
        elif point.bounds == bounds:
            for n, value in enumerate(added):
                buckets[n] += value
    return Rollup(
        len(group),
        min=low,
        max=high,
        count=count,
        sum=total,
        bounds=bounds,
        bucket_counts=tuple(buckets) if buckets is not None else None,
    )


def points_by(points: Sequence[PointIn]) -> dict[str, list[PointIn]]:
    """Points grouped by series key (in their order)."""
    out: dict[str, list[PointIn]] = {}
    for point in points:
        out.setdefault(point.key, []).append(point)
    return out
