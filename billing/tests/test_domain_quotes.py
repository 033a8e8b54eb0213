"""Quote rules without a database: quantiles, the fallback ladder, expected steps, headroom and
the backtest's no-look-ahead windows."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain import quotes as q

DAY = date(2026, 11, 1)
money = st.decimals(min_value=0, max_value=10_000, places=10, allow_nan=False)


def sample(cost: str | Decimal, project: str = "web", run_type: str = "feature", **kw) -> q.Sample:
    values = {
        "project": project,
        "run_type": run_type,
        "ai_cost": Decimal(cost),
        "total_cost": Decimal(cost) + Decimal("0.50"),
        "duration_ms": 60_000,
        "finished_on": DAY,
    }
    values.update(kw)
    return q.Sample(**values)


def test_quantile_is_linear_interpolation_between_ranks():
    values = [Decimal(v) for v in ("4", "1", "3", "2")]  # sorted 1 2 3 4
    assert q.quantile(values, Decimal("0.5")) == Decimal("2.5")
    assert q.quantile(values, Decimal("0.9")) == Decimal("3.7")  # h = 2.7: 3 + 0.7 * 1
    assert q.quantile(values, Decimal(0)) == 1
    assert q.quantile(values, Decimal(1)) == 4
    assert q.quantile([Decimal("7.25")], Decimal("0.9")) == Decimal("7.25")
    with pytest.raises(ValueError):
        q.quantile([], Decimal("0.5"))


@settings(max_examples=200)
@given(st.lists(money, min_size=1, max_size=60), st.randoms())
def test_quantiles_ordered_bounded_and_permutation_invariant(values, rnd):
    p50, p90 = q.quantile(values, q.P50), q.quantile(values, q.P90)
    assert min(values) <= p50 <= p90 <= max(values)
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert q.quantile(shuffled, q.P50) == p50 and q.quantile(shuffled, q.P90) == p90


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.sampled_from(["web", "api"]), st.sampled_from(["feature", "fix"]), money),
        min_size=1,
        max_size=80,
    ),
    st.randoms(),
)
def test_same_history_in_any_order_gives_the_same_quotes(rows, rnd):
    samples = [sample(cost, project, run_type) for project, run_type, cost in rows]
    first = q.template_quotes(samples, start=DAY, end=DAY)
    rnd.shuffle(samples)
    again = q.template_quotes(samples, start=DAY, end=DAY)
    assert first == again
    for found in first.sets.values():
        assert found.ai_p50 <= found.ai_p90 and found.total_p50 <= found.total_p90
        assert found.duration_p50 <= found.duration_p90


def test_ladder_takes_the_first_scope_with_enough_runs():
    web = [sample(f"{n}", "web", "feature") for n in range(1, q.MINIMUM_RUNS + 1)]
    api_fix = [sample("100", "api", "fix") for _ in range(q.MINIMUM_RUNS)]
    api_feature = [sample("50", "api", "feature") for _ in range(3)]
    quotes = q.template_quotes(web + api_fix + api_feature, start=DAY, end=DAY)
    scope, found = quotes.answer(project="web", run_type="feature")
    assert (scope, found.runs) == (q.PROJECT, q.MINIMUM_RUNS)
    # 3 runs of api/feature: not enough; feature over every project has 23
    scope, found = quotes.answer(project="api", run_type="feature")
    assert (scope, found.runs) == (q.TEMPLATE_RUN_TYPE, q.MINIMUM_RUNS + 3)
    # a run type never seen: the whole template
    scope, found = quotes.answer(project="api", run_type="docs")
    assert (scope, found.runs) == (q.TEMPLATE, 2 * q.MINIMUM_RUNS + 3)


def test_fewer_runs_than_the_minimum_still_answer_from_the_template():
    quotes = q.template_quotes([sample("1"), sample("3")], start=DAY, end=DAY)
    scope, found = quotes.answer(project="web", run_type="feature")
    assert (scope, found.runs, found.ai_p50) == (q.TEMPLATE, 2, Decimal(2))
    assert q.template_quotes([], start=DAY, end=DAY).answer(project="web", run_type="x") is None


def test_durations_ignore_runs_that_never_started():
    samples = [sample("1", duration_ms=None), sample("1", duration_ms=1000)]
    found = q.distribution(samples)
    assert (found.duration_p50, found.duration_p90, found.runs) == (1000, 1000, 2)
    assert q.distribution([sample("1", duration_ms=None)]).duration_p90 == 0


def test_expected_steps_scale_ai_and_move_total_by_the_same_dollars():
    found = q.distribution([sample(c) for c in ("2", "4", "6", "8")])  # mean 5
    scaled = q.for_steps(found, Decimal("10"))  # twice the mean
    assert scaled.ai_p50 == 2 * found.ai_p50 and scaled.ai_p90 == 2 * found.ai_p90
    assert scaled.total_p90 - found.total_p90 == scaled.ai_p90 - found.ai_p90
    assert scaled.duration_p90 == found.duration_p90
    assert q.steps_scale(Decimal(3), Decimal(0)) == 1


def test_headroom_is_budget_less_spent_less_p90():
    assert q.headroom(budget=Decimal(100), spent=Decimal("70.5"), p90=Decimal(40)) == Decimal(
        "-10.5"
    )


def test_backtest_quotes_from_the_days_before_the_request_only():
    history = {
        "spa": [
            # newest first, as the selector reads them
            sample("1000", finished_on=DAY),  # the request day itself: not history
            *[sample("1", finished_on=DAY - timedelta(days=1)) for _ in range(30)],
            sample("1", finished_on=DAY - timedelta(days=40)),  # older than the window
        ]
    }
    runs = [
        q.BacktestRun("spa", "web", "feature", DAY, Decimal("1")),
        q.BacktestRun("spa", "web", "feature", DAY, Decimal("1.01")),
        q.BacktestRun("spa", "web", "feature", DAY - timedelta(days=1), Decimal("1")),
    ]
    result = q.backtest(history=history, runs=runs, days=30, cap=5000)["spa"]
    # the first two are quoted P90 = 1.00 (the 1000 is not seen); the third has no history
    assert (result.runs, result.quoted, result.covered, result.skipped) == (3, 2, 1, 1)
    assert result.coverage == Decimal("0.5")


def test_backtest_of_lognormal_costs_covers_about_ninety_percent():
    rnd = random.Random(19)  # noqa: S311  (a fixed, reproducible sample)
    history: dict[str, list[q.Sample]] = {"spa": []}
    runs = []
    for offset in range(60, -1, -1):
        day = DAY - timedelta(days=offset)
        for _ in range(12):
            cost = Decimal(f"{rnd.lognormvariate(0.5, 0.8):.4f}")
            history["spa"].insert(0, sample(cost, finished_on=day))
            if offset < 30:
                runs.append(q.BacktestRun("spa", "web", "feature", day, cost))
    result = q.backtest(history=history, runs=runs, days=30, cap=5000)["spa"]
    assert result.quoted == result.runs == 360
    assert Decimal("0.85") <= result.coverage <= Decimal("0.95")
