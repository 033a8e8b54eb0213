"""Cost change decomposition: the parts add up to the change to the cent, and each kind of
change lands in its own part."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from gmpy2 import mpq
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.cost_change import (
    PARTS,
    CellUsage,
    PeriodUsage,
    cost_change,
    largest_remainder,
)
from billing.pricing.domain import TokenCounts, TokenPrices, token_cost

SONNET = TokenPrices(Decimal(3), Decimal(15), Decimal("0.30"), Decimal("3.75"))
MINI = TokenPrices(Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))


def cell(template, model, inp, out, cached, write=0, prices=SONNET, cost=None):  # type: ignore[no-untyped-def]
    if cost is None:
        cost = token_cost(TokenCounts(inp, out, cached, write), prices)
    return CellUsage(template, "anthropic", model, inp, out, cached, write, cost, prices)


def period(*cells, runs=None, failed=None, retried=None):  # type: ignore[no-untyped-def]
    return PeriodUsage(tuple(cells), runs or {}, failed or {}, retried or {})


BASE = period(
    cell("fix-bug", "claude-sonnet", 4_000_000, 300_000, 2_000_000, 100_000),
    cell("fix-bug", "gpt-mini", 1_000_000, 50_000, 0, prices=MINI),
    cell("write-docs", "claude-sonnet", 900_000, 200_000, 100_000),
    runs={"fix-bug": 120, "write-docs": 30},
    failed={"fix-bug": Decimal("2.50")},
    retried={"fix-bug": Decimal("1.25"), "write-docs": Decimal("0.40")},
)


def amounts(change):  # type: ignore[no-untyped-def]
    return {p.part: p.amount for p in change.parts}


def scaled(usage: PeriodUsage, k: int) -> PeriodUsage:
    return PeriodUsage(
        tuple(
            replace(
                c,
                input_tokens=c.input_tokens * k,
                output_tokens=c.output_tokens * k,
                cached_input_tokens=c.cached_input_tokens * k,
                cache_write_tokens=c.cache_write_tokens * k,
                cost=c.cost * k,
            )
            for c in usage.cells
        ),
        {t: v * k for t, v in usage.runs.items()},
        {t: v * k for t, v in usage.failed_cost.items()},
        {t: v * k for t, v in usage.retry_cost.items()},
    )


def test_nothing_moved_means_every_part_zero() -> None:
    change = cost_change(BASE, BASE)
    assert change.change == 0
    assert all(p.amount == 0 and not p.lines for p in change.parts)


def test_every_cell_scaled_lands_in_volume() -> None:
    after = scaled(BASE, 3)
    change = cost_change(BASE, after)
    assert change.change == change.after - change.before != 0
    parts = amounts(change)
    assert parts["volume"] == change.change
    assert all(parts[p] == 0 for p in PARTS if p != "volume")
    assert change.parts[0].lines[0].label == "runs: 150 -> 450"


def test_a_price_change_lands_in_unit_price() -> None:
    cheaper = TokenPrices(Decimal("2.40"), Decimal(12), Decimal("0.24"), Decimal(3))
    after = period(
        *(
            cell(
                c.template,
                c.model,
                c.input_tokens,
                c.output_tokens,
                c.cached_input_tokens,
                c.cache_write_tokens,
                prices=cheaper if c.prices is SONNET else c.prices,
            )
            for c in BASE.cells
        ),
        runs=BASE.runs,
        failed={"fix-bug": Decimal("2.50")},
        retried=BASE.retry_cost,
    )

    # Waste is a share of each template's cost: the same runs fail, so it costs what they cost.
    def template_cost(usage: PeriodUsage, template: str) -> Decimal:
        return sum((c.cost for c in usage.cells if c.template == template), Decimal(0))

    def rescaled(amounts: Mapping[str, Decimal]) -> dict[str, Decimal]:
        return {t: v * template_cost(after, t) / template_cost(BASE, t) for t, v in amounts.items()}

    after = replace(
        after, failed_cost=rescaled(BASE.failed_cost), retry_cost=rescaled(BASE.retry_cost)
    )
    change = cost_change(BASE, after)
    parts = amounts(change)
    assert change.change < 0
    assert parts["unit_price"] == change.change
    assert all(parts[p] == 0 for p in PARTS if p != "unit_price")
    assert "price of the same tokens on claude-sonnet: -20%" in change.parts[3].lines[0].label


def test_a_cache_hit_drop_lands_in_cache_with_its_rates() -> None:
    before = period(
        cell("fix-bug", "claude-sonnet", 10_000_000, 500_000, 6_200_000), runs={"fix-bug": 100}
    )
    after = period(
        cell("fix-bug", "claude-sonnet", 10_000_000, 500_000, 1_800_000), runs={"fix-bug": 100}
    )
    change = cost_change(before, after)
    parts = amounts(change)
    assert change.change > 0
    assert parts["cache"] == change.change
    assert all(parts[p] == 0 for p in PARTS if p != "cache")
    line = change.parts[2].lines[0]
    assert line.label == "cache hits on claude-sonnet fell from 62% to 18%"
    assert line.text == f"{line.label}: +${change.change:,.2f}"


def test_more_failed_runs_land_in_waste() -> None:
    before = period(cell("t", "claude-sonnet", 1_000_000, 100_000, 0), runs={"t": 10})
    useful = before.cost
    # Same useful work, and on top of it failed runs costing half of it.
    after = period(
        cell("t", "claude-sonnet", 1_500_000, 150_000, 0),
        runs={"t": 10},
        failed={"t": useful / 2},
    )
    change = cost_change(before, after)
    parts = amounts(change)
    assert parts["waste"] == change.change > 0
    assert change.parts[4].lines[0].label == "failed runs of template t: 0% -> 33% of its cost"


def test_a_new_template_shows_as_mix() -> None:
    after = replace(
        BASE,
        cells=(*BASE.cells, cell("migrate", "claude-sonnet", 500_000, 40_000, 0)),
        runs={**BASE.runs, "migrate": 0},
    )
    change = cost_change(BASE, after)
    assert amounts(change)["mix"] != 0
    assert sum(p.amount for p in change.parts) == change.change


def test_largest_remainder_hits_the_target() -> None:
    values = [Fraction(1, 3) * 100, Fraction(1, 3) * 100, Fraction(1, 3) * 100]
    assert largest_remainder(values, 100) == [34, 33, 33]
    assert largest_remainder([Fraction(-1, 10**9), Fraction(1, 10**9)], 0) == [0, 0]


def test_the_rationals_stay_inside() -> None:
    """The arithmetic is gmpy2's: what leaves the module is plain Python (cents ints, amounts
    and labels Decimals and text) that JSON, pickles and the cache take, and a half cent rounds
    to even, as with Fraction."""
    after = replace(BASE, runs={t: v * 2 for t, v in BASE.runs.items()})
    change = cost_change(BASE.scaled(mpq(1, 3)), after)
    amounts_ = [change.before, change.after, *(p.amount for p in change.parts)]
    amounts_ += [line.amount for p in change.parts for line in p.lines]
    assert {type(a) for a in amounts_} == {Decimal}
    assert all(isinstance(line.label, str) for p in change.parts for line in p.lines)
    assert [type(c) for c in largest_remainder([mpq(1, 3) * 100] * 3, 100)] == [int] * 3
    for cost, cents in (("0.125", "0.12"), ("0.135", "0.14"), ("-0.125", "-0.12")):
        half = period(cell("t", "local", 10, 0, 0, prices=None, cost=Decimal(cost)), runs={"t": 1})
        assert cost_change(period(), half).after == Decimal(cents)


tokens = st.integers(min_value=0, max_value=50_000_000)
models = st.sampled_from([("claude-sonnet", SONNET), ("gpt-mini", MINI), ("local", None)])


@st.composite
def cells(draw):  # type: ignore[no-untyped-def]
    name, prices = draw(models)
    inp = draw(tokens)
    cached = draw(st.integers(min_value=0, max_value=inp))
    write = draw(st.integers(min_value=0, max_value=inp - cached))
    out = draw(tokens)
    cost = draw(
        st.decimals(min_value=0, max_value=100_000, places=10, allow_nan=False) | st.just(None)
    )
    if cost is None:
        cost = token_cost(TokenCounts(inp, out, cached, write), prices) if prices else Decimal(1)
    template = draw(st.sampled_from(["a", "b", "c", ""]))
    return CellUsage(template, "p", name, inp, out, cached, write, cost, prices)


@st.composite
def periods(draw):  # type: ignore[no-untyped-def]
    found = draw(st.lists(cells(), max_size=8))
    templates = ["a", "b", "c", ""]
    runs = draw(st.dictionaries(st.sampled_from(templates), st.integers(0, 10_000)))
    money = st.decimals(min_value=0, max_value=50_000, places=4, allow_nan=False)
    failed = draw(st.dictionaries(st.sampled_from(templates), money))
    retried = draw(st.dictionaries(st.sampled_from(templates), money))
    return PeriodUsage(tuple(found), runs, failed, retried)


@settings(max_examples=300, deadline=None)
@given(periods(), periods())
def test_parts_add_up_to_the_change_to_the_cent(before: PeriodUsage, after: PeriodUsage) -> None:
    change = cost_change(before, after)
    assert change.before == before.cost.quantize(Decimal("0.01"))
    assert change.after == after.cost.quantize(Decimal("0.01"))
    assert sum(p.amount for p in change.parts) == change.change
    for part in change.parts:
        assert sum(line.amount for line in part.lines) == part.amount
        assert all(line.amount.as_tuple().exponent >= -2 for line in part.lines)


@settings(max_examples=100, deadline=None)
@given(periods(), st.integers(min_value=2, max_value=50))
def test_scaling_every_quantity_is_all_volume(usage: PeriodUsage, k: int) -> None:
    # Templates with usage need runs counted, else the one pseudo-run does not scale.
    usage = replace(
        usage,
        runs={**{c.template: 1 for c in usage.cells}, **{t: v for t, v in usage.runs.items() if v}},
    )
    change = cost_change(usage, scaled(usage, k))
    parts = amounts(change)
    assert parts["volume"] == change.change


def _unique(usage: PeriodUsage) -> PeriodUsage:
    """One cell per (template, model), usage only (no waste)."""
    cells = {c.key: c for c in usage.cells}
    return PeriodUsage(tuple(cells.values()), usage.runs)


def _repriced(c: CellUsage, **changes) -> CellUsage:  # type: ignore[no-untyped-def]
    """``c`` with ``changes``, its cost moved as its book cost moves (same contract ratio)."""
    new = replace(c, **changes)
    if c.prices is None or new.prices is None:
        return new
    old_book = token_cost(
        TokenCounts(c.input_tokens, c.output_tokens, c.cached_input_tokens, c.cache_write_tokens),
        c.prices,
    )
    if not old_book:
        return replace(c, cost=c.cost)  # nothing to scale: leave the cell as it was
    new_book = token_cost(
        TokenCounts(
            new.input_tokens, new.output_tokens, new.cached_input_tokens, new.cache_write_tokens
        ),
        new.prices,
    )
    return replace(new, cost=c.cost * new_book / old_book)


@settings(max_examples=150, deadline=None)
@given(periods(), st.floats(min_value=0, max_value=1))
def test_changing_only_cache_hits_is_all_cache(usage: PeriodUsage, kept: float) -> None:
    usage = _unique(usage)
    after = replace(
        usage,
        cells=tuple(
            _repriced(c, cached_input_tokens=int(c.cached_input_tokens * kept)) for c in usage.cells
        ),
    )
    change = cost_change(usage, after)
    parts = amounts(change)
    # Cost moves with the book ratio in 10-place Decimals: a cent may go to unit price.
    assert abs(parts["cache"] - change.change) <= Decimal("0.01")
    assert all(abs(parts[p]) <= Decimal("0.01") for p in PARTS if p != "cache")


@settings(max_examples=150, deadline=None)
@given(periods(), st.integers(min_value=1, max_value=400))
def test_changing_only_prices_is_all_unit_price(usage: PeriodUsage, percent: int) -> None:
    usage = _unique(usage)

    def moved(prices: TokenPrices | None) -> TokenPrices | None:
        if prices is None:
            return None
        k = Decimal(percent) / 100
        return TokenPrices(
            prices.input * k,
            None if prices.output is None else prices.output * k,
            None if prices.cache_read is None else prices.cache_read * k,
            None if prices.cache_write is None else prices.cache_write * k,
        )

    after = replace(usage, cells=tuple(_repriced(c, prices=moved(c.prices)) for c in usage.cells))
    change = cost_change(usage, after)
    parts = amounts(change)
    assert parts["unit_price"] == change.change
    assert all(parts[p] == 0 for p in PARTS if p != "unit_price")
