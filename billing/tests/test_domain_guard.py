"""The run guard's rules, without a database: budget choice, limits, expected remaining, states
and crossings (once per crossing)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.domain import guard
from billing.domain.guard import OK, STOP, WARN, BudgetScope, StepDone, StepExpected

D = Decimal


def test_most_specific_budget_applies() -> None:
    budgets = [
        BudgetScope(1, "", ""),
        BudgetScope(2, "web", ""),
        BudgetScope(3, "", "spa"),
        BudgetScope(4, "web", "spa"),
    ]
    choose = guard.budget_choose
    assert choose(budgets, project="web", template="spa").id == 4  # type: ignore[union-attr]
    assert choose(budgets[:3], project="web", template="spa").id == 3  # type: ignore[union-attr]
    assert choose(budgets[:2], project="web", template="spa").id == 2  # type: ignore[union-attr]
    assert choose(budgets[:2], project="api", template="spa").id == 1  # type: ignore[union-attr]
    assert choose(budgets[1:3], project="api", template="other") is None
    assert choose([], project="web", template="spa") is None


def test_limits() -> None:
    amount = guard.limit_of(basis="amount", amount=D("25"), multiple=None, p90=D("9"))
    assert amount == D("25.00")
    multiple = guard.limit_of(basis="p90_multiple", amount=None, multiple=D("1.5"), p90=D("3.333"))
    assert multiple == D("5.00")
    assert guard.limit_of(basis="p90_multiple", amount=None, multiple=D("1.5"), p90=None) is None


def test_expected_remaining_counts_steps_by_progress() -> None:
    expected = {"plan": StepExpected(D(1)), "code": StepExpected(D(3)), "test": StepExpected(D(2))}
    steps = {"plan": StepDone(True, D("0.4")), "code": StepDone(False, D("1"))}
    # plan done: 0; code in progress: 3 - 1; test not started: 2
    assert guard.expected_remaining(expected, steps, finished=False) == D(4)
    over = {"code": StepDone(False, D("5"))}  # spent past its expectation: nothing, not less
    assert guard.expected_remaining({"code": StepExpected(D(3))}, over, finished=False) == 0
    assert guard.expected_remaining(expected, {}, finished=True) == 0


def test_an_optional_step_counts_by_its_share_until_it_starts() -> None:
    """A review step in 30% of runs, $10 when it happens: $3 expected before it starts, the
    rest of its $10 once it is in progress, nothing once done."""
    expected = {"code": StepExpected(D(3)), "review": StepExpected(D(10), D("0.3"))}
    assert guard.expected_remaining(expected, {}, finished=False) == D(6)
    started = {"review": StepDone(False, D(4))}
    assert guard.expected_remaining(expected, started, finished=False) == D(3) + D(6)
    done = {"review": StepDone(True, D(4))}
    assert guard.expected_remaining(expected, done, finished=False) == D(3)


def test_a_p90_multiple_limit_is_frozen_under_the_same_budget() -> None:
    frozen = guard.limit_frozen
    kept = frozen(basis="p90_multiple", same_budget=True, stored=D(6), computed=D(9))
    assert kept == D(6)
    assert frozen(basis="p90_multiple", same_budget=False, stored=D(6), computed=D(9)) == D(9)
    assert frozen(basis="p90_multiple", same_budget=True, stored=None, computed=D(9)) == D(9)
    assert frozen(basis="amount", same_budget=True, stored=D(6), computed=D(9)) == D(9)


def test_states_against_limit_and_warn_level() -> None:
    assert guard.state_of(D("79.99"), D(100), 80) == OK
    assert guard.state_of(D(80), D(100), 80) == WARN
    assert guard.state_of(D(100), D(100), 80) == WARN  # at the limit: not over it
    assert guard.state_of(D("100.01"), D(100), 80) == STOP
    assert guard.state_of(D(10**6), None, 80) == OK  # no limit, never flagged


def test_each_crossing_fires_once() -> None:
    """Evaluations with more and more usage: an alert at ok->warn and at warn->stop, none while
    the state holds; after falling back below (a budget raised), the next rise fires again."""
    limit = D(10)
    state, fired = OK, []
    for cost, lim in [(2, limit), (8, limit), (9, limit), (11, limit), (15, limit), (15, D(30)),
                      (26, D(30)), (28, D(30))]:  # fmt: skip
        ev = guard.evaluate(
            cost_so_far=D(cost), expected={}, steps={}, finished=False, limit=lim, warn_percent=80
        )
        if guard.crossed(state, ev.state):
            fired.append((cost, ev.state))
        state = ev.state
    assert fired == [(8, WARN), (11, STOP), (26, WARN)]


money = st.decimals(min_value=0, max_value=10**6, places=4)


@given(
    cost=money,
    expected=st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.builds(StepExpected, money, st.decimals(min_value=0, max_value=1, places=3)),
    ),
    spent=st.dictionaries(st.sampled_from(["a", "b", "c", "x"]), st.tuples(st.booleans(), money)),
)
def test_projection_is_cost_plus_a_bounded_remainder(cost, expected, spent) -> None:  # type: ignore[no-untyped-def]
    steps = {name: StepDone(done, s) for name, (done, s) in spent.items()}
    ev = guard.evaluate(
        cost_so_far=cost, expected=expected, steps=steps, finished=False, limit=None,
        warn_percent=80,
    )  # fmt: skip
    assert ev.projected_total == ev.cost_so_far + ev.expected_remaining
    assert 0 <= ev.expected_remaining <= sum((e.cost for e in expected.values()), D(0))
    untouched = sum((e.cost * e.share for k, e in expected.items() if k not in steps), D(0))
    assert ev.expected_remaining >= untouched
