"""Prepaid commitments, pure: drawdown never exceeds an amount nor draws a day's spend twice,
overlapping ones draw in the documented order, and the exhaustion interval is ordered."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.commitments import (
    AI,
    INFRASTRUCTURE,
    TOTAL,
    DaySpend,
    Terms,
    drawdown,
    drawdown_order,
    exhaustion,
)
from billing.domain.forecasting import ForecastDay

D0 = date(2026, 10, 1)
ZERO = Decimal(0)


def _terms(i, amount, start=0, days=30, kind="commitment", covers=TOTAL):
    first = D0 + timedelta(days=start)
    return Terms(i, kind, Decimal(amount), first, first + timedelta(days=days - 1), covers)


def _ai(*amounts):
    return {D0 + timedelta(days=k): DaySpend(ai=Decimal(a)) for k, a in enumerate(amounts)}


money = st.decimals(min_value=0, max_value=500, places=4, allow_nan=False, allow_infinity=False)
terms_strategy = st.lists(
    st.builds(
        lambda i, amount, start, days, kind, covers: _terms(i, amount, start, days, kind, covers),
        st.just(0),
        st.decimals(min_value=Decimal("0.01"), max_value=2000, places=2),
        st.integers(0, 20),
        st.integers(1, 25),
        st.sampled_from(["commitment", "credit"]),
        st.sampled_from([AI, INFRASTRUCTURE, TOTAL]),
    ),
    min_size=1,
    max_size=5,
).map(lambda ts: [replace(t, id=k + 1) for k, t in enumerate(ts)])
spend_strategy = st.lists(st.tuples(money, money), min_size=1, max_size=45).map(
    lambda rows: {
        D0 + timedelta(days=k): DaySpend(ai=a, infrastructure=i) for k, (a, i) in enumerate(rows)
    }
)


@settings(max_examples=200, deadline=None)
@given(terms_strategy, spend_strategy)
def test_drawdown_never_exceeds_an_amount_nor_the_days_covered_spend(terms, spend):
    done = drawdown(terms, spend, through=D0 + timedelta(days=60))
    for t in terms:
        d = done[t.id]
        assert ZERO <= d.consumed <= t.amount
        assert d.remaining == t.amount - d.consumed
        assert all(t.start <= row.day <= t.last for row in d.days)
    for day, s in spend.items():
        drawn = [row for d in done.values() for row in d.days if row.day == day]
        ai_only = sum(
            (
                r.drawn
                for d in done.values()
                if d.terms.covers == AI
                for r in d.days
                if r.day == day
            ),
            ZERO,
        )
        infra_only = sum(
            (
                r.drawn
                for d in done.values()
                if d.terms.covers == INFRASTRUCTURE
                for r in d.days
                if r.day == day
            ),
            ZERO,
        )
        assert sum((r.drawn for r in drawn), ZERO) <= s.ai + s.infrastructure
        assert ai_only <= s.ai
        assert infra_only <= s.infrastructure


def test_credits_draw_first_then_the_commitment_ending_soonest():
    later = _terms(1, "100", days=30)
    sooner = _terms(2, "100", days=10)
    credit = _terms(3, "30", days=30, kind="credit")
    assert [t.id for t in drawdown_order([later, sooner, credit])] == [3, 2, 1]
    done = drawdown([later, sooner, credit], _ai("50", "50"), through=D0 + timedelta(days=1))
    assert done[3].consumed == Decimal("30")  # the credit took the first 30
    assert done[2].consumed == Decimal("70")  # the sooner commitment the rest
    assert done[1].consumed == ZERO
    assert done[3].exhausted_on == D0


def test_a_commitment_covers_only_its_kind_of_spend_and_its_days():
    ai_only = _terms(1, "1000", start=1, days=2, covers=AI)
    infra_only = _terms(2, "1000", covers=INFRASTRUCTURE)
    spend = {
        D0: DaySpend(ai=Decimal("5"), infrastructure=Decimal("7")),
        D0 + timedelta(days=1): DaySpend(ai=Decimal("3")),
        D0 + timedelta(days=5): DaySpend(ai=Decimal("11")),
    }
    done = drawdown([ai_only, infra_only], spend, through=D0 + timedelta(days=10))
    assert done[1].consumed == Decimal("3")
    assert done[2].consumed == Decimal("7")


def test_negative_spend_draws_nothing():
    done = drawdown([_terms(1, "10")], _ai("4", "-3", "2"), through=D0 + timedelta(days=5))
    assert done[1].consumed == Decimal("6")


def _forecast(daily_mean, spread, days=30, start=D0):
    rows, mean = [], ZERO
    for k in range(days):
        mean += daily_mean
        rows.append(
            ForecastDay(
                start + timedelta(days=k),
                daily_mean,
                ZERO,
                ZERO,
                ZERO,
                ZERO,
                mean,
                mean * (1 - spread),
                mean * (1 + spread),
            )
        )
    return rows


def test_exhaustion_is_the_day_the_forecast_runs_it_out_with_its_interval():
    t = _terms(1, "100", days=30)
    actual = drawdown([t], _ai("40"), through=D0)  # 60 left after day one
    forecast = _forecast(Decimal("10"), Decimal("0.5"), start=D0)
    ends = exhaustion(actual, forecast, after=D0)[1]
    # forecast from the next day: 10 a day (hi80 15, lo80 5) for the 60 left
    assert ends.expected == D0 + timedelta(days=6)
    assert ends.earliest == D0 + timedelta(days=4)
    assert ends.latest == D0 + timedelta(days=12)


def test_not_before_the_end_when_the_forecast_leaves_some():
    t = _terms(1, "1000", days=10)
    actual = drawdown([t], _ai("1"), through=D0)
    ends = exhaustion(actual, _forecast(Decimal("10"), Decimal("0.5")), after=D0)[1]
    assert ends.forecast and ends.expected is None and ends.latest is None


@settings(max_examples=200, deadline=None)
@given(
    terms_strategy,
    spend_strategy,
    st.decimals(min_value=0, max_value=300, places=2),
    st.decimals(min_value=0, max_value=Decimal("0.9"), places=2),
    st.integers(0, 20),
)
def test_exhaustion_interval_is_ordered(terms, spend, daily, spread, today_offset):
    today = D0 + timedelta(days=today_offset)
    actual = drawdown(terms, spend, through=today)
    ends = exhaustion(actual, _forecast(daily, spread, days=60, start=today), after=today)
    far = date.max
    for e in ends.values():
        if e.expected is not None:
            assert e.earliest is not None and e.earliest <= e.expected
        assert (e.earliest or far) <= (e.expected or far) <= (e.latest or far)
