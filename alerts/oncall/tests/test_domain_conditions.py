"""Judging the rules' figures (pure): the threshold is exclusive, too little data gives no
sample, and the summary carries the figures with their units."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from alerts.oncall.domain import conditions as judge
from alerts.oncall.domain.rules import RULES

FAILURES = RULES["factory_run_failure_rate_high"]
QUEUE = RULES["factory_queue_depth_high"]
WORKERS = RULES["factory_worker_error_rate_spike"]
COST = RULES["factory_ai_cost_anomaly"]
CONTROL = RULES["factory_control_plane_down"]


def test_failure_rate_needs_enough_runs_and_exceeds_the_threshold():
    assert judge.failure_rate(FAILURES, failed=4, finished=4, min_runs=5) is None
    at_threshold = judge.failure_rate(FAILURES, failed=1, finished=20, min_runs=5)
    assert at_threshold is not None and at_threshold.value == 5.0 and not at_threshold.active
    over = judge.failure_rate(FAILURES, failed=3, finished=40, min_runs=5)
    assert over is not None and over.active and over.labels == {}
    assert over.summary == ("3 of 40 finished runs failed in the last 5 min (7.5%, threshold 5%)")


def test_queue_depth_per_queue():
    sample = judge.queue_depth(QUEUE, queue="build", average=1240.4)
    assert sample.active and sample.labels == {"queue_name": "build"}
    assert sample.summary == (
        "Queue build: 1,240 jobs waiting on average over the last 1 min (threshold 1,000 jobs)"
    )
    assert not judge.queue_depth(QUEUE, queue="build", average=1000.0).active


def test_worker_error_rate_needs_ten_jobs():
    assert judge.worker_error_rate(WORKERS, errors=5, jobs=9, min_jobs=10) is None
    sample = judge.worker_error_rate(WORKERS, errors=3, jobs=20, min_jobs=10)
    assert sample is not None and sample.active and sample.value == 15.0
    assert "3 worker errors for 20 jobs finished in the last 5 min (15%" in sample.summary


def test_ai_cost_against_the_usual_with_a_minimum_cost():
    sample = judge.ai_cost(
        COST,
        cost=Decimal("12.3456"),
        usual=Decimal("4.00"),
        window_s=3600,
        min_cost=Decimal("1.00"),
    )
    assert sample.active and sample.value == float(Decimal("12.3456") / Decimal(4))
    assert sample.summary.startswith(
        "AI cost $12.35 in the last 1 h, 3.09 times the usual $4.00 per 1 h of the day before"
    )
    small = judge.ai_cost(
        COST, cost=Decimal("0.90"), usual=Decimal("0.10"), window_s=3600, min_cost=Decimal(1)
    )
    assert not small.active  # nine times the usual, but below the minimum cost
    double = judge.ai_cost(
        COST, cost=Decimal("8"), usual=Decimal("4"), window_s=3600, min_cost=Decimal(1)
    )
    assert not double.active  # exactly 2 times is not more than 2 times
    fresh = judge.ai_cost(
        COST, cost=Decimal("5"), usual=Decimal(0), window_s=3600, min_cost=Decimal(1)
    )
    assert fresh.active and fresh.value is None and "up from nothing" in fresh.summary


def test_control_plane_silence_in_seconds():
    sample = judge.control_plane(CONTROL, silent_s=300.0)
    assert sample.active and sample.value == 300.0
    assert sample.summary == ("No control-plane heartbeat or metric for 5 min (threshold 120 s)")
    assert not judge.control_plane(CONTROL, silent_s=120.0).active


def test_an_overridden_threshold_is_the_one_judged_and_shown():
    strict = replace(QUEUE, threshold=Decimal("10.5"))
    sample = judge.queue_depth(strict, queue="q", average=11)
    assert sample.active and "threshold 10.5 jobs" in sample.summary


def test_summaries_fit_the_incident_column():
    sample = judge.queue_depth(QUEUE, queue="q" * 500, average=2000)
    assert len(sample.summary) == judge.SUMMARY_MAX


def test_figures_round_half_up_and_never_hide_a_crossing():
    assert judge.number_text(1240.0) == "1,240"
    assert judge.number_text(7.25) == "7.25"
    assert judge.number_text(7.255) == "7.26"  # half up, on the decimal value
    assert judge.number_text(7.2) == "7.2"
    assert judge.number_text(5.004) == "5.00"  # above a threshold of 5: never shown as "5"
    assert judge.number_text(Decimal("5")) == "5"
