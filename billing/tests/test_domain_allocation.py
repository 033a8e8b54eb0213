"""Allocation (pure): exact sums for any pool and drivers, hand-computed examples per method."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.allocation import (
    UNALLOCATED,
    Method,
    Rule,
    allocate,
    split_exact,
    split_line,
    to_minor,
    totals_by_key,
)

USAGE = Rule(Method.USAGE, "cpu_seconds")

amounts = st.decimals(
    min_value=Decimal("-1e9"),
    max_value=Decimal("1e9"),
    places=11,
    allow_nan=False,
    allow_infinity=False,
)
quantities = st.decimals(
    min_value=Decimal(0), max_value=Decimal("1e9"), places=6, allow_nan=False, allow_infinity=False
)
drivers = st.dictionaries(st.text("abcdefghij", min_size=1, max_size=4), quantities, max_size=30)


def _sum(lines) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))


@given(amount=amounts, drivers=drivers)
def test_usage_lines_sum_exactly_to_the_rounded_pool(amount, drivers):
    lines = allocate(amount, USAGE, drivers)
    assert _sum(lines) == Decimal(to_minor(amount)) / 100
    assert all(line.amount == line.amount.quantize(Decimal("0.01")) for line in lines)
    if to_minor(amount) and not any(q * 10**6 >= Decimal("0.5") for q in drivers.values()):
        assert [line.key for line in lines] == [UNALLOCATED]


@given(
    amount=amounts,
    drivers=drivers,
    fraction=st.decimals(min_value=0, max_value=1, places=3, allow_nan=False),
    fixed=st.one_of(
        st.none(), st.decimals(min_value=0, max_value=Decimal("1e6"), places=2, allow_nan=False)
    ),
    split=st.sampled_from(["even", "weights"]),
)
def test_fixed_variable_lines_sum_exactly(amount, drivers, fraction, fixed, split):
    rule = Rule(
        Method.FIXED_VARIABLE,
        "tokens",
        fixed_amount=fixed,
        fixed_fraction=None if fixed is not None else fraction,
        fixed_split=split,
    )
    weights = {key: Decimal(len(key)) for key in drivers}
    lines = allocate(amount, rule, drivers, weights=weights)
    assert _sum(lines) == Decimal(to_minor(amount)) / 100


@given(amount=amounts, drivers=drivers)
def test_signs_follow_the_pool(amount, drivers):
    lines = allocate(amount, USAGE, drivers)
    if amount < 0:
        assert all(line.amount <= 0 for line in lines)
    else:
        assert all(line.amount >= 0 for line in lines)


@given(
    total=st.integers(-(10**12), 10**12),
    weights=st.dictionaries(
        st.text("xyz", min_size=1, max_size=3), st.integers(0, 10**9), min_size=1
    ).filter(lambda w: sum(w.values()) > 0),
)
def test_split_exact_is_exact_and_within_one_unit_of_the_ideal(total, weights):
    parts = split_exact(total, weights)
    assert sum(parts.values()) == total
    weight_sum = sum(weights.values())
    for key, part in parts.items():
        ideal = total * weights[key] / weight_sum
        assert abs(part - ideal) < 1


@settings(max_examples=50)
@given(amount=amounts, drivers=drivers)
def test_reproducible_whatever_the_order(amount, drivers):
    reversed_drivers = dict(reversed(list(drivers.items())))
    assert allocate(amount, USAGE, drivers) == allocate(amount, USAGE, reversed_drivers)


def test_usage_example_by_hand():
    lines = allocate(
        Decimal("100.00"),
        USAGE,
        {"acme": Decimal(600), "globex": Decimal(300), "initech": Decimal(100)},
    )
    assert [(line.key, line.amount, line.ratio) for line in lines] == [
        ("acme", Decimal("60.00"), Decimal("0.6000000000")),
        ("globex", Decimal("30.00"), Decimal("0.3000000000")),
        ("initech", Decimal("10.00"), Decimal("0.1000000000")),
    ]
    assert lines[0].driver_quantity == Decimal(600) and lines[0].method == "usage"


def test_ties_are_broken_by_key_order():
    lines = allocate(Decimal("0.02"), USAGE, {"b": Decimal(1), "a": Decimal(1), "c": Decimal(1)})
    assert [(line.key, line.amount) for line in lines] == [
        ("a", Decimal("0.01")),
        ("b", Decimal("0.01")),
        ("c", Decimal("0.00")),
    ]


def test_proportional_by_runs_and_evenly():
    by_runs = allocate(
        Decimal(10), Rule(Method.PROPORTIONAL, "runs"), {"a": Decimal(3), "b": Decimal(1)}
    )
    assert totals_by_key(by_runs) == {"a": Decimal("7.50"), "b": Decimal("2.50")}
    even = Rule(Method.PROPORTIONAL, "even")
    drivers = {"a": Decimal(3), "b": Decimal(0), "c": Decimal(1)}
    everyone = allocate(Decimal(10), even, drivers, active=["a", "b", "c"])
    assert totals_by_key(everyone) == {
        "a": Decimal("3.34"),
        "b": Decimal("3.33"),
        "c": Decimal("3.33"),
    }
    # without a list of active keys, only keys with usage share an even split
    assert totals_by_key(allocate(Decimal(10), even, drivers)) == {
        "a": Decimal("5.00"),
        "c": Decimal("5.00"),
    }


def test_fixed_plus_variable_by_hand():
    # $12,000 control plane: $3,000 fixed, evenly over the 3 active tenants; $9,000 by tokens.
    rule = Rule(Method.FIXED_VARIABLE, "tokens", fixed_amount=Decimal(3000))
    lines = allocate(
        Decimal(12000),
        rule,
        {"a": Decimal(2), "b": Decimal(1), "c": Decimal(0)},
        active=["a", "b", "c"],
    )
    assert [(ln.key, ln.part, ln.amount) for ln in lines] == [
        ("a", "fixed", Decimal("1000.00")),
        ("b", "fixed", Decimal("1000.00")),
        ("c", "fixed", Decimal("1000.00")),
        ("a", "variable", Decimal("6000.00")),
        ("b", "variable", Decimal("3000.00")),
    ]
    by_weight = allocate(
        Decimal(100),
        Rule(Method.FIXED_VARIABLE, "tokens", fixed_fraction=Decimal("0.5"), fixed_split="weights"),
        {"a": Decimal(1), "b": Decimal(1)},
        weights={"a": Decimal(3), "b": Decimal(1)},
    )
    assert totals_by_key(by_weight) == {"a": Decimal("62.50"), "b": Decimal("37.50")}


def test_credits_and_pools_without_usage():
    credit = allocate(Decimal("-10.00"), USAGE, {"a": Decimal(1), "b": Decimal(3)})
    assert totals_by_key(credit) == {"a": Decimal("-2.50"), "b": Decimal("-7.50")}
    nothing = allocate(Decimal("42.42"), USAGE, {"a": Decimal(0)})
    assert [(ln.key, ln.amount) for ln in nothing] == [(UNALLOCATED, Decimal("42.42"))]
    assert allocate(Decimal(0), USAGE, {}) == []


def test_second_level_follows_the_line():
    [variable] = allocate(Decimal(90), USAGE, {"acme": Decimal(5)})
    projects = split_line(variable, {"web": Decimal(2), "api": Decimal(1)})
    assert totals_by_key(projects) == {"api": Decimal("30.00"), "web": Decimal("60.00")}
    fixed = allocate(
        Decimal(10),
        Rule(Method.FIXED_VARIABLE, "tokens", fixed_fraction=Decimal(1)),
        {"acme": Decimal(1)},
    )[0]
    even = split_line(fixed, {"web": Decimal(0), "api": Decimal(0)}, active=["web", "api", "db"])
    assert totals_by_key(even) == {
        "api": Decimal("3.34"),
        "db": Decimal("3.33"),
        "web": Decimal("3.33"),
    }
    orphan = split_line(variable, {"web": Decimal(0)})
    assert [ln.key for ln in orphan] == [UNALLOCATED]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "magic", "driver": "x"},
        {"method": "fixed_variable", "driver": "x"},
        {"method": "fixed_variable", "driver": "x", "fixed_fraction": Decimal(2)},
        {"method": "fixed_variable", "driver": "x", "fixed_amount": Decimal(1), "fixed_split": "?"},
    ],
)
def test_bad_rules_are_refused(kwargs):
    with pytest.raises(ValueError):
        Rule(**kwargs)


@given(st.lists(amounts, max_size=40))
def test_rounded_lines_add_up_to_the_rounded_total(values):
    from billing.domain.allocation import round_lines

    rounded = round_lines(values)
    assert sum(rounded, Decimal(0)) == Decimal(to_minor(sum(values, Decimal(0)))) / 100
    assert all(abs(r - v) < Decimal("0.01") for r, v in zip(rounded, values, strict=True))
