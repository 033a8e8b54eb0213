"""Quotes before a run: what a run of a template is expected to cost and take, from the runs of
the same kind that finished before it. Pure (no Django, no database): takes the history as
:class:`Sample` rows and returns Decimals; ``billing.selectors.quotes`` fetches and caches.

Rules:

- Quantiles are ``percentile_cont`` / numpy's ``linear`` method: the sorted samples ``x`` (n of
  them) at ``h = (n - 1) * q`` are ``x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h])``,
  exact in Decimal; money is then rounded half-even to the cent, durations to the millisecond.
- Comparable runs: the fallback ladder ``project`` (same project, template and run type) ->
  ``template_run_type`` (any project) -> ``template`` (any project and run type); the first
  scope with at least ``MINIMUM_RUNS`` runs answers, else the widest scope that has runs.
- Expected steps: a quote for given steps scales the scope's spread by the sum of those steps'
  expected costs over the scope's mean AI cost, so P50 and P90 keep the history's shape around
  the steps' expected total.
- Reproducible: samples are sorted by value before any quantile, so the same history in any
  order gives the same quote; nothing is random.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

MINIMUM_RUNS = 20
P50, P90 = Decimal("0.5"), Decimal("0.9")
CENT = Decimal("0.01")
ZERO = Decimal(0)
PROJECT, TEMPLATE_RUN_TYPE, TEMPLATE = "project", "template_run_type", "template"
SCOPES = (PROJECT, TEMPLATE_RUN_TYPE, TEMPLATE)


@dataclass(frozen=True)
class Sample:
    """One finished run of the template: its AI cost (USD, the ledger's 10 places), total cost
    (AI plus allocated infrastructure, USD) and duration (None when the run never started)."""

    project: str
    run_type: str
    ai_cost: Decimal
    total_cost: Decimal
    duration_ms: int | None
    finished_on: date  # the tenant's local day the run finished


@dataclass(frozen=True)
class Distribution:
    """Spreads of one comparable set: money unrounded (USD; callers round once, to the cent,
    with :func:`cents`), durations rounded to the millisecond."""

    runs: int
    ai_p50: Decimal
    ai_p90: Decimal
    ai_mean: Decimal  # what expected steps are scaled against
    total_p50: Decimal
    total_p90: Decimal
    duration_p50: int
    duration_p90: int


@dataclass(frozen=True)
class TemplateQuotes:
    """Every comparable set of one template's history, keyed by scope: ``(project, run_type)``
    for ``project``, ``(run_type,)`` for ``template_run_type`` and ``()`` for ``template``."""

    start: date
    end: date
    sets: dict[tuple[str, ...], Distribution] = field(default_factory=dict)

    def answer(self, *, project: str, run_type: str) -> tuple[str, Distribution] | None:
        """The scope that answers for ``project`` and ``run_type`` and its spreads (ladder in the
        module docstring); None when the template has no finished run at all."""
        ladder = (
            (PROJECT, (project, run_type)),
            (TEMPLATE_RUN_TYPE, (run_type,)),
            (TEMPLATE, ()),
        )
        for scope, key in ladder:
            found = self.sets.get(key)
            if found is not None and found.runs >= MINIMUM_RUNS:
                return scope, found
        widest = self.sets.get(())
        return (TEMPLATE, widest) if widest is not None else None


def quantile(values: Sequence[Decimal], q: Decimal) -> Decimal:
    """The ``q`` quantile (0 <= q <= 1) of ``values`` by linear interpolation between closest
    ranks (``percentile_cont``); ``values`` need not be sorted and must not be empty."""
    if not values:
        raise ValueError("no values")
    if not ZERO <= q <= 1:
        raise ValueError(f"quantile {q} outside [0, 1]")
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = int(h)  # h >= 0: int() is floor
    if low + 1 >= len(ordered):
        return ordered[-1]
    return ordered[low] + (h - low) * (ordered[low + 1] - ordered[low])


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _ms(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def distribution(samples: Sequence[Sample]) -> Distribution:
    """Spreads of ``samples`` (not empty). Runs without a duration count for cost only; with no
    duration at all the duration spread is 0."""
    ai = [s.ai_cost for s in samples]
    total = [s.total_cost for s in samples]
    durations = [Decimal(s.duration_ms) for s in samples if s.duration_ms is not None]
    return Distribution(
        runs=len(samples),
        ai_p50=quantile(ai, P50),
        ai_p90=quantile(ai, P90),
        ai_mean=sum(ai, ZERO) / len(ai),
        total_p50=quantile(total, P50),
        total_p90=quantile(total, P90),
        duration_p50=_ms(quantile(durations, P50)) if durations else 0,
        duration_p90=_ms(quantile(durations, P90)) if durations else 0,
    )


def template_quotes(samples: Iterable[Sample], *, start: date, end: date) -> TemplateQuotes:
    """Every comparable set of one template's finished runs ``samples`` (the history of the
    local days ``start`` to ``end``, inclusive)."""
    groups: dict[tuple[str, ...], list[Sample]] = {}
    for sample in samples:
        for key in ((sample.project, sample.run_type), (sample.run_type,), ()):
            groups.setdefault(key, []).append(sample)
    return TemplateQuotes(
        start=start,
        end=end,
        sets={key: distribution(group) for key, group in sorted(groups.items())},
    )


def steps_scale(expected_total: Decimal, mean: Decimal) -> Decimal:
    """The factor a spread is multiplied by for a run of given steps: their expected AI cost
    ``expected_total`` over the comparable runs' mean AI cost ``mean`` (1 when the mean is 0)."""
    return expected_total / mean if mean > 0 else Decimal(1)


def for_steps(found: Distribution, expected_total: Decimal) -> Distribution:
    """``found`` for a run of given steps whose expected AI cost is ``expected_total``: the AI
    spread scaled by :func:`steps_scale`, the total spread moved by the same dollars as the AI
    spread (infrastructure does not depend on steps), durations unchanged."""
    factor = steps_scale(expected_total, found.ai_mean)
    ai_p50, ai_p90 = found.ai_p50 * factor, found.ai_p90 * factor
    return Distribution(
        runs=found.runs,
        ai_p50=ai_p50,
        ai_p90=ai_p90,
        ai_mean=found.ai_mean * factor,
        total_p50=found.total_p50 + ai_p50 - found.ai_p50,
        total_p90=found.total_p90 + ai_p90 - found.ai_p90,
        duration_p50=found.duration_p50,
        duration_p90=found.duration_p90,
    )


def headroom(*, budget: Decimal, spent: Decimal, p90: Decimal) -> Decimal:
    """What the month's budget has left after the run's P90: ``budget - spent - p90`` (USD,
    negative when the run would likely take the month over)."""
    return budget - spent - p90


@dataclass(frozen=True)
class BacktestResult:
    """How often a run's actual AI cost fell at or under the P90 quote it would have had."""

    runs: int = 0
    quoted: int = 0
    covered: int = 0  # actual AI cost (to the cent) <= its P90

    @property
    def skipped(self) -> int:
        return self.runs - self.quoted

    @property
    def coverage(self) -> Decimal | None:
        return Decimal(self.covered) / self.quoted if self.quoted else None

    def add(self, quoted: bool, covered: bool) -> BacktestResult:
        return BacktestResult(self.runs + 1, self.quoted + quoted, self.covered + covered)


@dataclass(frozen=True)
class BacktestRun:
    """A run to backtest: what it was quoted as and what it cost (AI, USD)."""

    template: str
    project: str
    run_type: str
    requested_on: date  # the tenant's local day it was requested
    ai_cost: Decimal


def backtest(
    *,
    history: Mapping[str, Sequence[Sample]],
    runs: Iterable[BacktestRun],
    days: int,
    cap: int,
) -> dict[str, BacktestResult]:
    """Each template's coverage of the P90 quote: a run requested on day ``d`` is quoted from
    its template's ``history`` (newest first) that finished on the ``days`` local days before
    ``d`` (``d`` itself excluded: no look-ahead), at most ``cap`` runs, by the same ladder as a
    live quote. A template's quotes are computed once per day."""
    windows: dict[tuple[str, date], TemplateQuotes] = {}
    results: dict[str, BacktestResult] = {}
    for run in runs:
        key = (run.template, run.requested_on)
        quotes = windows.get(key)
        if quotes is None:
            first = date.fromordinal(run.requested_on.toordinal() - days)
            last = date.fromordinal(run.requested_on.toordinal() - 1)
            window = [s for s in history.get(run.template, ()) if first <= s.finished_on <= last]
            quotes = windows[key] = template_quotes(window[:cap], start=first, end=last)
        answer = quotes.answer(project=run.project, run_type=run.run_type)
        result = results.get(run.template, BacktestResult())
        results[run.template] = result.add(
            answer is not None, answer is not None and cents(run.ai_cost) <= cents(answer[1].ai_p90)
        )
    return results
