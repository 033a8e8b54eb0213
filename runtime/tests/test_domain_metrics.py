"""runtime.domain.metrics without a database: decoding, flattening, counter increases across
resets, and rollups that come out the same whatever order or batches the points arrive in."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.domain.metrics import (
    GAUGE,
    HISTOGRAM,
    HOUR_NS,
    MINUTE_NS,
    SUM,
    Increase,
    PointIn,
    Rollup,
    SeriesIn,
    TooManyPoints,
    category_of,
    increases,
    metrics_decode,
    metrics_flatten,
    point_rollup,
    rollup_merge,
    rollups,
)
from runtime.tests.otlp_metrics import SECOND, T0, histogram_request, number_request, sdk_request
from usage.domain.otlp import OtlpDecodeError, OtlpMediaTypeError


def series(kind: str = SUM, *, cumulative: bool = True, monotonic: bool = True) -> SeriesIn:
    return SeriesIn(
        key="k" * 64,
        name="retries_total",
        kind=kind,
        category="runtime",
        unit="",
        monotonic=monotonic,
        cumulative=cumulative,
        labels={},
        tenant="",
        service="",
        instance="",
    )


def test_catalogue():
    assert category_of("queue_depth") == "runtime"
    assert category_of("run_duration_seconds") == "runtime"
    assert category_of("tokens_used_total") == "usage"
    assert category_of("cost_ai_total") == "usage"
    assert category_of("http_requests") == "unknown"


def test_protobuf_and_json_decode_to_the_same_points():
    message = sdk_request(resource={"tenant.id": "alpha"})
    from_proto = metrics_flatten(
        metrics_decode(message.SerializeToString(), "application/x-protobuf")
    )
    from_json = metrics_flatten(
        metrics_decode(
            json_format.MessageToJson(message).encode(), "application/json; charset=utf-8"
        )
    )
    assert from_proto.points == from_json.points
    assert {p.tenant for p in from_proto.points} == {"alpha"}
    assert from_proto.unknown == ("my_custom_thing",)
    assert from_proto.usage == ("tokens_used_total",)


def test_points_are_counted_before_parsing():
    message = number_request("queue_depth", [(0, T0 + n, 1.0) for n in range(5)], kind="gauge")
    with pytest.raises(TooManyPoints):
        metrics_decode(message.SerializeToString(), "application/x-protobuf", max_points=4)
    with pytest.raises(TooManyPoints):
        metrics_decode(
            json_format.MessageToJson(message).encode(), "application/json", max_points=4
        )
    assert (
        len(
            metrics_decode(
                message.SerializeToString(), "application/x-protobuf", max_points=5
            ).resource_metrics
        )
        == 1
    )


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"\x0a\xff", "application/x-protobuf", OtlpDecodeError),
        (b"{", "application/json", OtlpDecodeError),
        (b'"x"', "application/json", OtlpDecodeError),
        (b"{}", "text/csv", OtlpMediaTypeError),
        (gzip.compress(b"{}", mtime=0), "application/json", OtlpDecodeError),
        (
            json.dumps(
                {
                    "resourceMetrics": [
                        {
                            "scopeMetrics": [
                                {
                                    "metrics": [
                                        {
                                            "name": "x",
                                            "gauge": {
                                                "dataPoints": [{"exemplars": [{"traceId": "zz"}]}]
                                            },
                                        }
                                    ]
                                }
                            ]
                        }
                    ]
                }
            ).encode(),
            "application/json",
            OtlpDecodeError,
        ),
    ],
)
def test_unusable_bodies(body, content_type, error):
    with pytest.raises(error):
        metrics_decode(body, content_type)


def test_invalid_histograms_are_rejected_with_reasons():
    bad = histogram_request("job_duration_seconds", [(0, T0, [1, 2], 1.0)], bounds=(1.0, 2.0))
    unordered = histogram_request(
        "job_duration_seconds", [(0, T0, [1, 2, 3], 1.0)], bounds=(5.0, 2.0)
    )
    for message, reason in ((bad, "one more than its bounds"), (unordered, "increasing")):
        batch = metrics_flatten(message)
        assert batch.points == []
        assert reason in batch.rejected[0].reason


def test_future_points_are_rejected():
    from runtime.domain.metrics import ns_time

    batch = metrics_flatten(
        number_request("queue_depth", [(0, T0, 1.0), (0, T0 + 3600 * SECOND, 2.0)], kind="gauge"),
        latest=ns_time(T0 + 60 * SECOND),
    )
    assert [p.value for p in batch.points] == [1.0]
    assert "future" in batch.rejected[0].reason


def test_points_before_2000_or_starting_after_their_time_are_rejected():
    """As events, spans and logs refuse times before 2000 (a review stored a point at 1 ns after
    1970 and a sum starting in 2554)."""
    batch = metrics_flatten(
        number_request(
            "jobs_total", [(0, 1, 1.0), (T0 + 3600 * SECOND, T0, 2.0), (T0 - SECOND, T0, 3.0)]
        )
    )
    assert [p.value for p in batch.points] == [3.0]
    reasons = sorted(r.reason for r in batch.rejected)
    assert reasons == [
        "a data point before 2000 (check the exporter's clock)",
        "a data point whose start time is after its time",
    ]


# --- increases ---------------------------------------------------------------------------------

segments = st.lists(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8).map(sorted),
    min_size=1,
    max_size=5,
)


def counter_points(parts: list[list[int]]) -> list[PointIn]:
    """Cumulative points of a counter restarted at each part (a new start time)."""
    points, at = [], T0
    for n, part in enumerate(parts):
        start = T0 + n * 1000 * SECOND
        for value in part:
            at += SECOND
            points.append(PointIn(series(), max(at, start + SECOND), start, float(value)))
            at = max(at, start + SECOND)
    return points


@given(segments, st.integers(min_value=1, max_value=6))
def test_increases_sum_to_the_final_values_across_resets(parts, batch_size):
    points = counter_points(parts)
    state, total, added = None, 0.0, []
    for n in range(0, len(points), batch_size):  # any split into requests gives the same
        done, state = increases(state, points[n : n + batch_size])
        added += [i.value for _, i in done]
    total = sum(added)
    assert all(v >= 0 for v in added)
    assert total == sum(part[-1] for part in parts)
    whole, _ = increases(None, points)
    assert [i.value for _, i in whole] == added


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=10))
def test_a_value_below_the_previous_one_is_a_reset_without_a_new_start(values):
    points = [PointIn(series(), T0 + n * SECOND, T0, float(v)) for n, v in enumerate(values)]
    done, _ = increases(None, points)
    expected = [values[0]] + [b - a if b >= a else b for a, b in itertools.pairwise(values)]
    assert [i.value for _, i in done] == expected


def test_a_counter_first_seen_long_after_it_started_is_a_baseline():
    """Its lifetime was counted as its first minute's increase (50,000 errors in a minute for
    a worker first seen three days after it started; an OpenTelemetry review): such a first
    point adds nothing and the next one its change; a counter that started within the window
    (a new process) counts from its start; a histogram likewise."""
    three_days = 3 * 86_400 * SECOND
    old = [PointIn(series(), T0 + n * 60 * SECOND, T0 - three_days, v) for n, v in
           enumerate([50_000.0, 50_007.0])]  # fmt: skip
    done, _ = increases(None, old)
    assert [i.value for _, i in done] == [0.0, 7.0]
    fresh = PointIn(series(), T0 + 30 * SECOND, T0, 12.0)
    assert [i.value for _, i in increases(None, [fresh])[0]] == [12.0]
    unknown_start = PointIn(series(), T0, 0, 5.0)
    assert [i.value for _, i in increases(None, [unknown_start])[0]] == [5.0]
    hist = PointIn(
        series(HISTOGRAM), T0, T0 - three_days, None, count=40, sum=9.0, bounds=(1.0,),
        bucket_counts=(30, 10),
    )  # fmt: skip
    [(_, first)] = increases(None, [hist])[0]
    assert (first.count, first.sum) == (0, 0.0)


def test_a_cumulative_histograms_min_and_max_are_not_an_intervals():
    """They cover the histogram's whole life: kept for a later point's increase, its minute's
    min was 12 s and max 20,000 s for one 30 s job (an OpenTelemetry review)."""

    def point(cumulative: bool, start: int) -> PointIn:
        return PointIn(
            series(HISTOGRAM, cumulative=cumulative), T0 + 60 * SECOND, start, None, count=3,
            sum=20_042.0, min=12.0, max=20_000.0, bounds=(60.0,), bucket_counts=(2, 1),
        )  # fmt: skip

    cumulative = point(True, T0)
    [(_, increase)] = increases(None, [cumulative])[0]
    assert (point_rollup(cumulative, increase).min, point_rollup(cumulative, increase).max) == (
        None,
        None,
    )
    delta = point(False, T0)
    [(_, increase)] = increases(None, [delta])[0]
    assert (point_rollup(delta, increase).min, point_rollup(delta, increase).max) == (
        12.0,
        20_000.0,
    )
    # Several points in one bucket are folded at once: the same rule (a review found the hour
    # rollup still clamped to the lifetime's).
    later = [cumulative._replace(time_ns=cumulative.time_ns + n * SECOND) for n in range(3)]
    done, _ = increases(None, later)
    for width in (MINUTE_NS, HOUR_NS):
        [folded] = rollups(done, width).values()
        assert (folded.min, folded.max) == (None, None)


def test_non_monotonic_sums_go_down_without_a_reset():
    points = [
        PointIn(series(monotonic=False), T0 + n * SECOND, T0, v)
        for n, v in enumerate([5.0, 2.0, 4.0])
    ]
    done, _ = increases(None, points)
    assert [i.value for _, i in done] == [5.0, -3.0, 2.0]


def test_resent_and_late_points_add_nothing():
    first = [PointIn(series(), T0 + n * SECOND, T0, v) for n, v in enumerate([1.0, 4.0])]
    _, state = increases(None, first)
    done, after = increases(state, [first[0], first[1]])
    assert [i.value for _, i in done] == [0.0, 0.0] and after == state


def test_delta_points_are_taken_as_they_are():
    points = [
        PointIn(series(cumulative=False), T0 + n * SECOND, 0, v) for n, v in enumerate([5.0, 1.0])
    ]
    done, state = increases(None, points)
    assert [i.value for _, i in done] == [5.0, 1.0] and state is None


bucket_rows = st.lists(
    st.lists(st.integers(min_value=0, max_value=50), min_size=3, max_size=3), min_size=1, max_size=8
)


@given(bucket_rows, st.integers(min_value=1, max_value=8))
def test_histogram_increases_are_bucket_wise_and_sum_to_the_final_counts(steps, reset_at):
    """Cumulative histogram points that grow by ``steps``; the exporter restarts before point
    ``reset_at`` (a new start time, counting from zero again)."""
    cumulative, points, finals = [0, 0, 0], [], []
    start = T0
    for n, step in enumerate(steps):
        if n == reset_at:
            finals.append(list(cumulative))
            cumulative, start = [0, 0, 0], T0 + n * SECOND
        cumulative = [a + b for a, b in zip(cumulative, step, strict=True)]
        points.append(
            PointIn(
                series(HISTOGRAM),
                T0 + (n + 1) * SECOND,
                start,
                count=sum(cumulative),
                sum=float(sum(cumulative)),
                bounds=(1.0, 10.0),
                bucket_counts=tuple(cumulative),
            )
        )
    finals.append(list(cumulative))
    done, _ = increases(None, points)
    added = [sum(i.bucket_counts[b] for _, i in done) for b in range(3)]
    assert added == [sum(f[b] for f in finals) for b in range(3)]
    assert sum(i.count for _, i in done) == sum(sum(f) for f in finals)
    assert all(c >= 0 for _, i in done for c in i.bucket_counts)


# --- rollups -----------------------------------------------------------------------------------

gauge_points = st.lists(
    st.tuples(st.integers(min_value=0, max_value=179), st.integers(min_value=-100, max_value=100)),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60)
@given(gauge_points, st.randoms(use_true_random=False), st.integers(min_value=1, max_value=5))
def test_gauge_rollups_do_not_depend_on_arrival_order(raw, rng, batches):
    points = [PointIn(series(GAUGE), T0 + s * SECOND, 0, float(v)) for s, v in raw]
    pairs = [(p, Increase(value=p.value)) for p in points]
    expected = rollups(pairs, MINUTE_NS)
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    merged: dict[tuple[str, int], Rollup] = {}
    size = max(1, len(shuffled) // batches)
    for n in range(0, len(shuffled), size):  # the batches the SQL merges one after the other
        for slot, part in rollups(shuffled[n : n + size], MINUTE_NS).items():
            merged[slot] = part if slot not in merged else rollup_merge(merged[slot], part)
    assert merged.keys() == expected.keys()
    for slot, rollup in expected.items():
        other = merged[slot]
        assert (other.samples, other.min, other.max, other.total) == (
            rollup.samples,
            rollup.min,
            rollup.max,
            rollup.total,
        )
        assert other.last_time_ns == rollup.last_time_ns
        # equal times: either point may be the last one; otherwise the latest wins
        latest = [p.value for p in points if p.time_ns == rollup.last_time_ns]
        assert other.last in latest and rollup.last in latest


def test_histogram_rollups_merge_buckets_when_bounds_match():
    a = PointIn(
        series(HISTOGRAM), T0, 0, count=3, sum=3.0, bounds=(1.0, 2.0), bucket_counts=(1, 1, 1)
    )
    b = PointIn(
        series(HISTOGRAM),
        T0 + SECOND,
        0,
        count=2,
        sum=4.0,
        bounds=(1.0, 2.0),
        bucket_counts=(0, 2, 0),
    )
    c = PointIn(
        series(HISTOGRAM),
        T0 + 2 * SECOND,
        0,
        count=1,
        sum=9.0,
        bounds=(5.0, 9.0),
        bucket_counts=(0, 0, 1),
    )
    pairs = [
        (p, Increase(count=p.count, sum=p.sum, bucket_counts=p.bucket_counts)) for p in (a, b, c)
    ]
    (rollup,) = rollups(pairs, MINUTE_NS).values()
    assert (rollup.count, rollup.sum, rollup.bounds, rollup.bucket_counts) == (
        6,
        16.0,
        (1.0, 2.0),
        (1, 3, 1),
    )
    folded = point_rollup(*pairs[0])
    for pair in pairs[1:]:
        folded = rollup_merge(folded, point_rollup(*pair))
    assert folded == rollup


def test_a_state_read_back_in_microseconds_is_the_same_counter():
    """PostgreSQL keeps microseconds: the series' state read back must not look like a reset."""
    start = T0 + 123_456_789
    first = PointIn(series(), start + SECOND + 987, start, 2.0)
    _, state = increases(None, [first])
    assert state is not None
    stored = state._replace(
        start_ns=state.start_ns // 1000 * 1000, time_ns=state.time_ns // 1000 * 1000
    )
    done, _ = increases(stored, [first, PointIn(series(), start + 2 * SECOND + 5, start, 5.0)])
    assert [i.value for _, i in done] == [0.0, 3.0]
