"""OTLP metric requests for the tests: from the stock OpenTelemetry SDK (``sdk_request``) and by
hand (``number_request``, ``histogram_request``), where times and start times must be exact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
T0 = 1_790_000_000 * 10**9  # 2026-09-21T14:13:20Z: a minute boundary plus 20 s
SECOND = 10**9


def sdk_request(
    resource: dict[str, Any] | None = None, labels: dict[str, Any] | None = None
) -> ExportMetricsServiceRequest:
    """The seed's instruments recorded through the SDK and encoded as its exporter does."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(
            {"service.name": "factory-worker", "service.instance.id": "w-1", **(resource or {})}
        ),
    )
    meter = provider.get_meter("factory")
    extra = labels or {}
    depth = meter.create_gauge("queue_depth")
    depth.set(42, {"queue_name": "build", "priority": "high", **extra})
    errors = meter.create_counter("worker_errors_total")
    errors.add(3, {"worker_pool": "gpu", "error_type": "oom", **extra})
    duration = meter.create_histogram("job_duration_seconds", unit="s")
    for seconds in (0.4, 3, 7, 120):
        duration.record(seconds, {"job_type": "build", "status": "ok", **extra})
    tokens = meter.create_counter("tokens_used_total")
    tokens.add(1500, {"model": "gpt-4.1", **extra})
    custom = meter.create_up_down_counter("my_custom_thing")
    custom.add(2, extra)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return encode_metrics(data)


def _attrs(labels: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items()]


def _wrap(
    metrics: Sequence[Metric], resource: dict[str, str] | None
) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=list(metrics))])
    rm.resource.attributes.extend(_attrs({"service.name": "factory-queue", **(resource or {})}))
    request.resource_metrics.append(rm)
    return request


def number_request(
    name: str,
    points: Sequence[tuple[int, int, float]],
    *,
    kind: str = "sum",
    temporality: int = CUMULATIVE,
    monotonic: bool = True,
    labels: dict[str, str] | None = None,
    resource: dict[str, str] | None = None,
) -> ExportMetricsServiceRequest:
    """One gauge or sum of ``points`` (start ns, time ns, value)."""
    data_points = [
        NumberDataPoint(
            start_time_unix_nano=start,
            time_unix_nano=time,
            as_double=value,
            attributes=_attrs(labels or {}),
        )
        for start, time, value in points
    ]
    metric = Metric(name=name)
    if kind == "gauge":
        metric.gauge.data_points.extend(data_points)
    else:
        metric.sum.data_points.extend(data_points)
        metric.sum.aggregation_temporality = temporality
        metric.sum.is_monotonic = monotonic
    return _wrap([metric], resource)


def histogram_request(
    name: str,
    points: Sequence[tuple[int, int, Sequence[int], float]],
    bounds: Sequence[float] = (1.0, 10.0),
    *,
    temporality: int = CUMULATIVE,
    labels: dict[str, str] | None = None,
) -> ExportMetricsServiceRequest:
    """One histogram of ``points`` (start ns, time ns, bucket counts, sum)."""
    metric = Metric(name=name)
    metric.histogram.aggregation_temporality = temporality
    for start, time, counts, total in points:
        metric.histogram.data_points.append(
            HistogramDataPoint(
                start_time_unix_nano=start,
                time_unix_nano=time,
                count=sum(counts),
                sum=total,
                bucket_counts=list(counts),
                explicit_bounds=list(bounds),
                attributes=_attrs(labels or {}),
            )
        )
    return _wrap([metric], None)
