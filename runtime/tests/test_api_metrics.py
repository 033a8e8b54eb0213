"""POST /v1/metrics: the OTLP metrics receiver stores series, raw points, rollups and heartbeats
in the right schema, and answers bad input with the trace receiver's 4xx rules."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from factory_portal.accounts.services import api_key_create
from runtime.models import Heartbeat, MetricHour, MetricMinute, MetricPoint, MetricSeries
from runtime.tests.otlp_metrics import (
    DELTA,
    SECOND,
    T0,
    histogram_request,
    number_request,
    sdk_request,
)
from tests.support import bearer, host_client, key_for
from usage.models import LlmUsageEvent

pytestmark = pytest.mark.django_db


def post(host, key, message, *, as_json=False, gzip_body=False, content_type=None):
    body = message.SerializeToString() if hasattr(message, "SerializeToString") else message
    kind = "application/x-protobuf"
    if as_json:
        body, kind = json_format.MessageToJson(message).encode(), "application/json"
    headers = {"HTTP_CONTENT_ENCODING": "gzip"} if gzip_body else {}
    return host_client(host).post(
        "/v1/metrics",
        data=gzip.compress(body) if gzip_body else body,
        content_type=content_type or kind,
        **bearer(key),
        **headers,
    )


def answer_of(response) -> ExportMetricsServiceResponse:
    assert response.status_code == 200, response.content
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(response.content)
    return answer


def platform_key() -> str:
    with schema_context("public"):
        return api_key_create(name="factory", scopes=["ingest"])[1]


def counts(schema: str) -> tuple[int, int, int, int]:
    with schema_context(schema):
        return (
            MetricSeries.objects.count(),
            MetricPoint.objects.count(),
            MetricMinute.objects.count(),
            MetricHour.objects.count(),
        )


def test_sdk_metrics_are_stored_in_the_tenant_schema(alpha, beta):
    _, key = key_for(alpha, ["ingest"])
    answer = answer_of(post(alpha.host, key, sdk_request(), gzip_body=True))
    assert answer.partial_success.rejected_data_points == 0
    message = answer.partial_success.error_message
    assert "unknown instruments kept" in message and "my_custom_thing" in message
    assert "tokens_used_total" in message and "kept out of money" in message
    with schema_context(alpha.schema):
        series = {s.name: s for s in MetricSeries.objects.all()}
        assert set(series) == {
            "queue_depth",
            "worker_errors_total",
            "job_duration_seconds",
            "tokens_used_total",
            "my_custom_thing",
        }
        assert series["queue_depth"].category == "runtime"
        assert series["tokens_used_total"].category == "usage"
        assert series["my_custom_thing"].category == "unknown"
        assert series["worker_errors_total"].labels == {
            "worker_pool": "gpu",
            "error_type": "oom",
            "service.name": "factory-worker",
            "service.instance.id": "w-1",
        }
        histogram = MetricPoint.objects.get(series=series["job_duration_seconds"])
        assert histogram.count == 4 and histogram.sum == pytest.approx(130.4)
        assert sum(histogram.bucket_counts) == 4
        assert len(histogram.bounds) + 1 == len(histogram.bucket_counts)
        minute = MetricMinute.objects.get(series=series["queue_depth"])
        assert (minute.samples, minute.min, minute.max, minute.last) == (1, 42, 42, 42)
        assert MetricHour.objects.get(series=series["worker_errors_total"]).increase == 3
        heartbeat = Heartbeat.objects.get()
        assert (heartbeat.service, heartbeat.instance, heartbeat.signal) == (
            "factory-worker",
            "w-1",
            "metrics",
        )
        assert not LlmUsageEvent.objects.exists()  # token metrics never become money
    assert counts(beta.schema) == (0, 0, 0, 0)
    assert counts("public") == (0, 0, 0, 0)


def test_json_body_gets_a_json_answer(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = post(
        alpha.host, key, number_request("queue_depth", [(0, T0, 5)], kind="gauge"), as_json=True
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}
    with schema_context(alpha.schema):
        assert MetricPoint.objects.get().value == 5


def test_otlp_json_with_hex_exemplar_ids_and_string_integers(alpha):
    _, key = key_for(alpha, ["ingest"])
    document = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "q"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "dlq_size",
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(T0),
                                            "asInt": "7",
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": str(T0),
                                                    "asInt": "7",
                                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                                    "spanId": "eee19b7ec3c1b174",
                                                }
                                            ],
                                        }
                                    ]
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = post(alpha.host, key, json.dumps(document).encode(), content_type="application/json")
    assert response.status_code == 200, response.content
    with schema_context(alpha.schema):
        assert MetricPoint.objects.get().value == 7


def test_tenant_key_cannot_write_another_tenant(alpha, beta):
    _, key = key_for(alpha, ["ingest"])
    answer = answer_of(post(alpha.host, key, sdk_request(labels={"tenant_id": "beta"})))
    assert answer.partial_success.rejected_data_points == 5
    assert "names tenant 'beta'" in answer.partial_success.error_message
    answer = answer_of(post(alpha.host, key, sdk_request(resource={"tenant.id": "beta"})))
    assert answer.partial_success.rejected_data_points == 5
    assert counts(alpha.schema) == (0, 0, 0, 0)
    assert counts(beta.schema) == (0, 0, 0, 0)
    assert counts("public") == (0, 0, 0, 0)


def test_a_key_without_the_ingest_scope_is_refused(alpha):
    _, key = key_for(alpha, ["read"])
    assert post(alpha.host, key, sdk_request()).status_code == 403
    assert (
        host_client(alpha.host)
        .post("/v1/metrics", data=b"", content_type="application/x-protobuf")
        .status_code
        == 401
    )
    assert counts(alpha.schema) == (0, 0, 0, 0)


def test_platform_key_routes_points_to_tenants_and_platform(public_host, alpha, beta):
    key = platform_key()
    answer = answer_of(post(public_host, key, sdk_request(labels={"tenant_id": "alpha"})))
    assert answer.partial_success.rejected_data_points == 0
    answer_of(post(public_host, key, sdk_request(resource={"run.tenant_id": "beta"})))
    answer_of(post(public_host, key, sdk_request()))  # no tenant: the platform's
    answer = answer_of(post(public_host, key, sdk_request(resource={"tenant.id": "nobody"})))
    assert answer.partial_success.rejected_data_points == 5
    assert "unknown or inactive tenant 'nobody'" in answer.partial_success.error_message
    assert counts(alpha.schema)[:2] == (5, 5)
    assert counts(beta.schema)[:2] == (5, 5)
    assert counts("public")[:2] == (5, 5)
    with schema_context(alpha.schema):
        assert MetricSeries.objects.get(name="queue_depth").labels["tenant_id"] == "alpha"
    connection.set_schema_to_public()
    assert MetricSeries.objects.filter(labels__has_key="tenant_id").count() == 0


def test_platform_points_of_more_tenants_than_a_request_stores_are_rejected(
    public_host, alpha, beta, settings
):
    settings.PLATFORM_MAX_TENANTS_PER_REQUEST = 1
    both = sdk_request(resource={"run.tenant_id": "beta"})
    both.MergeFrom(sdk_request(resource={"run.tenant_id": "alpha"}))
    answer = answer_of(post(public_host, platform_key(), both))
    assert answer.partial_success.rejected_data_points == 5  # beta's
    assert "one platform request stores at most 1" in answer.partial_success.error_message
    assert counts(alpha.schema)[:2] == (5, 5)
    assert counts(beta.schema)[:2] == (0, 0)


def test_a_tenant_key_on_the_tenant_host_never_writes_the_public_schema(alpha):
    _, key = key_for(alpha, ["ingest"])
    answer_of(post(alpha.host, key, sdk_request()))
    assert counts("public") == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", 400),
        (b"not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"resourceMetrics": 5}', "application/json", 400),
        (b"<xml/>", "application/xml", 415),
        (b"", "text/plain", 415),
    ],
)
def test_unusable_bodies_are_refused_with_a_problem(alpha, body, content_type, status):
    _, key = key_for(alpha, ["ingest"])
    response = post(alpha.host, key, body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert counts(alpha.schema) == (0, 0, 0, 0)


def test_too_many_points_is_413_and_stores_nothing(alpha):
    _, key = key_for(alpha, ["ingest"])
    points = [(0, T0 + n * SECOND, float(n)) for n in range(11)]
    message = number_request("queue_depth", points, kind="gauge")
    with override_settings(OTLP_MAX_METRIC_POINTS_PER_REQUEST=10):
        response = post(alpha.host, key, message)
        assert response.status_code == 413
        assert "At most 10 data points" in response.json()["detail"]
        assert post(alpha.host, key, message, as_json=True).status_code == 413
    with override_settings(INGEST_MAX_BODY_BYTES=100):
        assert post(alpha.host, key, message).status_code == 413
    assert (
        post(
            alpha.host, key, b"x", content_type="application/x-protobuf", gzip_body=False
        ).status_code
        == 400
    )
    assert counts(alpha.schema) == (0, 0, 0, 0)


def test_bad_gzip_is_a_problem(alpha):
    _, key = key_for(alpha, ["ingest"])
    response = host_client(alpha.host).post(
        "/v1/metrics",
        data=b"not gzip",
        content_type="application/x-protobuf",
        HTTP_CONTENT_ENCODING="gzip",
        **bearer(key),
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_unsupported_and_invalid_points_are_reported_not_stored(alpha):
    _, key = key_for(alpha, ["ingest"])
    message = number_request("queue_depth", [(0, T0, 1.0), (0, 0, 2.0)], kind="gauge")
    exp = message.resource_metrics[0].scope_metrics[0].metrics.add(name="job_duration_seconds")
    exp.exponential_histogram.data_points.add(time_unix_nano=T0, count=1)
    summary = message.resource_metrics[0].scope_metrics[0].metrics.add(name="latency")
    summary.summary.data_points.add(time_unix_nano=T0, count=1)
    answer = answer_of(post(alpha.host, key, message))
    assert answer.partial_success.rejected_data_points == 3
    text = answer.partial_success.error_message
    assert "exponential histograms are not supported" in text
    assert "summaries are not supported" in text
    assert "without time_unix_nano" in text
    assert counts(alpha.schema)[:2] == (1, 1)


def test_counter_reset_starts_counting_again(alpha):
    _, key = key_for(alpha, ["ingest"])
    first, second = T0 - 100 * SECOND, T0 + 5 * SECOND
    answer_of(
        post(
            alpha.host,
            key,
            number_request("retries_total", [(first, T0, 5), (first, T0 + SECOND, 8)]),
        )
    )
    # the process restarted: a new start time, the counter begins again at 3
    answer_of(
        post(alpha.host, key, number_request("retries_total", [(second, T0 + 10 * SECOND, 3)]))
    )
    # the same value resent adds nothing; a value below the previous one is a reset too
    answer_of(
        post(
            alpha.host,
            key,
            number_request(
                "retries_total", [(second, T0 + 10 * SECOND, 3), (second, T0 + 20 * SECOND, 2)]
            ),
        )
    )
    with schema_context(alpha.schema):
        values = list(MetricPoint.objects.order_by("time", "id").values_list("value", "total"))
        assert values == [(5, 5), (3, 8), (3, 3), (0, 3), (2, 2)]
        minute = MetricMinute.objects.get()
        assert minute.increase == 13 and minute.last == 2
        assert MetricHour.objects.get().increase == 13


def test_delta_sums_are_taken_as_they_are(alpha):
    _, key = key_for(alpha, ["ingest"])
    message = number_request(
        "worker_errors_total", [(T0 - SECOND, T0, 4), (T0, T0 + SECOND, 1)], temporality=DELTA
    )
    answer_of(post(alpha.host, key, message))
    answer_of(post(alpha.host, key, message))  # a delta resent counts again: deltas have no state
    with schema_context(alpha.schema):
        assert MetricMinute.objects.get().increase == 10


def test_histograms_become_increases_and_merge_bucket_wise(alpha):
    _, key = key_for(alpha, ["ingest"])
    start = T0 - 60 * SECOND
    answer_of(
        post(
            alpha.host,
            key,
            histogram_request("job_duration_seconds", [(start, T0, [1, 2, 0], 5.0)]),
        )
    )
    answer_of(
        post(
            alpha.host,
            key,
            histogram_request("job_duration_seconds", [(start, T0 + 5 * SECOND, [2, 4, 1], 30.0)]),
        )
    )
    with schema_context(alpha.schema):
        points = list(
            MetricPoint.objects.order_by("time").values_list("count", "sum", "bucket_counts")
        )
        assert points == [(3, 5.0, [1, 2, 0]), (4, 25.0, [1, 2, 1])]
        minute = MetricMinute.objects.get()
        assert (minute.count, minute.sum, minute.bucket_counts, minute.bounds) == (
            7,
            30.0,
            [2, 4, 1],
            [1.0, 10.0],
        )
        hour = MetricHour.objects.get()
        assert hour.bucket_counts == [2, 4, 1]


def test_gauge_rollups_are_right_whatever_order_points_arrive_in(alpha):
    _, key = key_for(alpha, ["ingest"])
    late = number_request("queue_depth", [(0, T0 + 30 * SECOND, 9)], kind="gauge")
    early = number_request(
        "queue_depth", [(0, T0 + 5 * SECOND, 2), (0, T0 + 10 * SECOND, 20)], kind="gauge"
    )
    answer_of(post(alpha.host, key, late))
    answer_of(post(alpha.host, key, early))
    with schema_context(alpha.schema):
        minute = MetricMinute.objects.get()
        assert (minute.samples, minute.min, minute.max, minute.total, minute.last) == (
            3,
            2,
            20,
            31,
            9,
        )
        assert minute.last_time == datetime.fromtimestamp((T0 + 30 * SECOND) / 1e9, tz=UTC)
        assert minute.start == datetime.fromtimestamp((T0 - 20 * SECOND) / 1e9, tz=UTC)


def test_nul_characters_and_odd_labels_are_stored_not_a_500(alpha):
    _, key = key_for(alpha, ["ingest"])
    message = number_request(
        "queue\x00_depth", [(0, T0, 1)], kind="gauge", labels={"q\x00": "a\x00b"}
    )
    answer = answer_of(post(alpha.host, key, message))
    assert answer.partial_success.rejected_data_points == 0
    with schema_context(alpha.schema):
        assert MetricSeries.objects.get().labels["q"] == "ab"


def test_a_level_sent_as_an_up_down_counter_reads_as_its_value(alpha):
    """The SDK's UpDownCounter reports the level (cumulative): +40 then +2 is 42 waiting, and
    a counter that went down reads as what it reports. The status page showed the change since
    the previous export (2, and negative counts; a review found it)."""
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import (
        encode_metrics,
    )
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from runtime import status

    _, key = key_for(alpha, ["ingest"])
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    waiting = provider.get_meter("factory").create_up_down_counter("jobs_in_queue")
    seen = []
    for change in (40, 2, -45):
        waiting.add(change, {"job_type": "build"})
        answer_of(post(alpha.host, key, encode_metrics(reader.get_metrics_data())))
        with schema_context(alpha.schema):
            seen.append(status.jobs_in_queue(now=timezone.now())["build"].value)
    provider.shutdown()
    assert seen == [40, 42, -3]
    # The charts and the queue-depth rule read the level too, from raw points and rollups.
    from datetime import timedelta

    from runtime import selectors
    from runtime.domain.ranges import RangePreset, Resolution, Window, window

    span = window(
        RangePreset("t", "t", timedelta(hours=1), timedelta(minutes=10), "10 minutes"),
        timezone.now(),
    )
    for resolution in (Resolution.RAW, Resolution.MINUTE):
        w = Window(span.start, span.end, span.step, resolution)
        with schema_context(alpha.schema):
            line = selectors.gauge_trend("jobs_in_queue", w, by="job_type").lines["build"]
        value = [v for v in line if v is not None][-1]
        if resolution is Resolution.RAW:  # the bucket's mean level: (40 + 42 - 3) / 3
            assert value == pytest.approx(79 / 3)
        else:  # the mean of each minute's last level, however the three fell into minutes
            assert min(abs(value - v) for v in (-3.0, 18.5, 19.5, 79 / 3)) < 1e-9, line
