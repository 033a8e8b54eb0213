"""The run guard's rules (pure: no Django, no I/O): which run budget applies to a run, the run's
projected total, its state against the limit, and when a state change is a crossing that alerts.

- **Budget choice**: the most specific budget matching the run's project and template:
  project+template, then template (any project), then project (any template), then tenant-wide
  (both empty).
- **Limit**: a USD amount, or a multiple of the P90 AI cost quoted for the run's project,
  template and run type (no quote yet: no limit, the run is ``ok``). Rounded to the cent.
- **Projected total** = AI cost so far + expected remaining. Expected remaining sums, over the
  template's expected steps, for a step not started its expected cost times its share (the part
  of the template's finished runs that had it: an optional step in 30% of runs counts 30% of its
  cost), ``max(0, expected - spent in it)`` for a step in progress (it is happening: in full),
  and nothing for a step done. A finished run has no remaining cost.
- **Frozen limit**: a P90-multiple limit is computed at the run's first evaluation and kept while
  the run lives (and for its final figures), so history moving cannot make its state flap; a
  change of the budget that applies computes it again (``limit_frozen``).
- **State**: ``stop`` when the projected total exceeds the limit, ``warn`` when it reaches the
  warn level (percent of the limit), else ``ok``.
- **Crossing**: a state above the previous one (ok -> warn, ok -> stop, warn -> stop). The state
  may also go back down (a budget raised, expectations lowered, a step's spend below its
  expectation once done); the next rise is then a new crossing. Staying or rising further within
  the same state is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

OK, WARN, STOP = "ok", "warn", "stop"
STATES = (OK, WARN, STOP)
_LEVEL = {OK: 0, WARN: 1, STOP: 2}
AMOUNT, P90_MULTIPLE = "amount", "p90_multiple"
ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class BudgetScope:
    id: int
    project: str  # "" = any project
    template: str  # "" = any template


def budget_choose(
    budgets: Sequence[BudgetScope], *, project: str, template: str
) -> BudgetScope | None:
    """The most specific budget that matches (see the module docstring), or None."""
    by_scope = {(b.project, b.template): b for b in budgets}
    for key in ((project, template), ("", template), (project, ""), ("", "")):
        if key in by_scope:
            return by_scope[key]
    return None


def limit_of(
    *, basis: str, amount: Decimal | None, multiple: Decimal | None, p90: Decimal | None
) -> Decimal | None:
    """The run's limit in USD (cents), or None when a P90 multiple has no quote to multiply."""
    if basis == AMOUNT:
        return None if amount is None else amount.quantize(CENT, ROUND_HALF_UP)
    if multiple is None or p90 is None:
        return None
    return (p90 * multiple).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class StepExpected:
    """A template step's expected AI cost in a run that has it, and the share of runs that do
    (0 to 1)."""

    cost: Decimal
    share: Decimal = Decimal(1)


@dataclass(frozen=True)
class StepDone:
    """What the run did of one step: ``done`` (no job active any more) and the AI cost spent."""

    done: bool
    spent: Decimal


def expected_remaining(
    expected: Mapping[str, StepExpected], steps: Mapping[str, StepDone], *, finished: bool
) -> Decimal:
    """USD still expected, unrounded (see the module docstring)."""
    if finished:
        return ZERO
    total = ZERO
    for name, step_expected in expected.items():
        step = steps.get(name)
        if step is None:
            total += step_expected.cost * min(Decimal(1), max(ZERO, step_expected.share))
        elif not step.done:
            total += max(ZERO, step_expected.cost - step.spent)
    return total


def limit_frozen(
    *, basis: str, same_budget: bool, stored: Decimal | None, computed: Decimal | None
) -> Decimal | None:
    """The limit to judge a run by: a P90 multiple's limit stored at an earlier evaluation under
    the same budget stays; otherwise (an amount, a first evaluation, no quote then, another
    budget) the one computed now."""
    if basis == P90_MULTIPLE and same_budget and stored is not None:
        return stored
    return computed


def state_of(projected: Decimal, limit: Decimal | None, warn_percent: int) -> str:
    if limit is None:
        return OK
    if projected > limit:
        return STOP
    if projected * 100 >= limit * warn_percent:
        return WARN
    return OK


def crossed(previous: str, current: str) -> bool:
    """True when ``current`` is a higher state than ``previous``: the alert goes out once."""
    return _LEVEL[current] > _LEVEL[previous]


@dataclass(frozen=True)
class Evaluation:
    state: str
    cost_so_far: Decimal  # USD, unrounded
    expected_remaining: Decimal
    projected_total: Decimal
    limit: Decimal | None


def evaluate(
    *,
    cost_so_far: Decimal,
    expected: Mapping[str, StepExpected],
    steps: Mapping[str, StepDone],
    finished: bool,
    limit: Decimal | None,
    warn_percent: int,
) -> Evaluation:
    remaining = expected_remaining(expected, steps, finished=finished)
    projected = cost_so_far + remaining
    return Evaluation(
        state=state_of(projected, limit, warn_percent),
        cost_so_far=cost_so_far,
        expected_remaining=remaining,
        projected_total=projected,
        limit=limit,
    )
