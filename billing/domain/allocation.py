"""Cost allocation: splitting a pool of shared cost across tenants, then projects (pure, no ORM).

Methods (SPEC §5):
- ``usage``: in proportion to a usage driver (tokens, token cost, job-seconds, cpu_seconds, ...);
- ``proportional``: in proportion to a count (runs by default) or evenly;
- ``fixed_variable``: a fixed part split evenly or by contract weights across the tenants active in
  the period, plus a variable part in proportion to a usage driver.

Exactness: the pool is rounded once to the currency's minor unit (half-even); its lines then sum
to it exactly, by largest-remainder rounding in integer minor units with a deterministic tie-break
(larger remainder first, then key order). Negative pools (credits) are split like positive ones
and stay negative. A part with no driver usage goes to an explicit ``unallocated`` line. Every
line says how it came about: method, driver, driver quantity, ratio, part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from factory_portal.money import CENT

UNALLOCATED = "unallocated"
RATIO_QUANTUM = Decimal("0.0000000001")
# Driver quantities are compared as integers in millionths: exact, and fast for 10,000 tenants.
DRIVER_SCALE = 10**6


class Method:
    USAGE = "usage"
    PROPORTIONAL = "proportional"
    FIXED_VARIABLE = "fixed_variable"
    ALL = (USAGE, PROPORTIONAL, FIXED_VARIABLE)


# What a tenant reads for a line's method, driver and part (pages and exports show these, never
# the stored names). A driver's unit names what its quantity counts.
METHOD_LABELS = {
    Method.USAGE: "Usage-based",
    Method.PROPORTIONAL: "Proportional",
    Method.FIXED_VARIABLE: "Fixed + variable",
    "reversal": "Reversal of an earlier allocation",
}
DRIVERS: dict[str, tuple[str, str]] = {  # driver -> (label, unit of its quantity)
    "tokens": ("Tokens", "tokens"),
    "token_cost": ("AI cost", "USD"),
    "job_seconds": ("Job time", "job-seconds"),
    "cpu_seconds": ("CPU time", "CPU-seconds"),
    "gb_hours": ("Memory and storage", "GB-hours"),
    "runs": ("Runs", "runs"),
    "even": ("Split evenly", ""),
    "contract_weight": ("Contract weight", "weight"),
    "reversal": ("Reversal", ""),
}
PART_LABELS = {"all": "Whole pool", "fixed": "Fixed part", "variable": "Variable part"}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method.replace("_", " ").capitalize())


def driver_label(driver: str) -> str:
    return DRIVERS[driver][0] if driver in DRIVERS else driver.replace("_", " ").capitalize()


def driver_unit(driver: str) -> str:
    """The unit of a driver's quantity (``""`` for a driver without one, like an even split);
    an unknown driver is its own unit, so a quantity is never shown bare."""
    return DRIVERS[driver][1] if driver in DRIVERS else driver.replace("_", " ")


def part_label(part: str) -> str:
    return PART_LABELS.get(part, part.capitalize())


@dataclass(frozen=True)
class Rule:
    """How one pool is split. ``driver`` names the usage quantity (``even`` splits evenly);
    for fixed + variable, give ``fixed_amount`` or ``fixed_fraction`` and ``fixed_split``
    (``even`` or ``weights``)."""

    method: str
    driver: str
    version: int = 1
    fixed_amount: Decimal | None = None
    fixed_fraction: Decimal | None = None
    fixed_split: str = "even"

    def __post_init__(self) -> None:
        if self.method not in Method.ALL:
            raise ValueError(f"unknown allocation method {self.method!r}")
        if self.method == Method.FIXED_VARIABLE:
            if (self.fixed_amount is None) == (self.fixed_fraction is None):
                raise ValueError("fixed + variable needs a fixed amount or a fixed fraction")
            if self.fixed_fraction is not None and not 0 <= self.fixed_fraction <= 1:
                raise ValueError("the fixed fraction must be between 0 and 1")
            if self.fixed_split not in ("even", "weights"):
                raise ValueError("the fixed part is split 'even' or by 'weights'")


@dataclass(frozen=True)
class Line:
    key: str  # tenant (or project) key, or UNALLOCATED
    amount: Decimal  # in the currency, rounded to the minor unit
    method: str
    driver: str
    driver_quantity: Decimal
    ratio: Decimal  # this line's share of the part it was split from
    part: str  # "all", "fixed" or "variable"

    @property
    def unallocated(self) -> bool:
        return self.key == UNALLOCATED


def to_minor(amount: Decimal, quantum: Decimal = CENT) -> int:
    """``amount`` in minor units (cents), rounded half-even."""
    return int((amount / quantum).to_integral_value(rounding=ROUND_HALF_EVEN))


def split_exact(total_units: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``total_units`` (may be negative) in proportion to non-negative integer ``weights``
    (not all zero) so that the parts sum exactly to it: largest remainder, ties by key order."""
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        raise ValueError("weights must not all be zero")
    sign = -1 if total_units < 0 else 1
    units = abs(total_units)
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for key in sorted(weights):
        quotient, remainder = divmod(units * weights[key], weight_sum)
        parts[key] = quotient
        remainders.append((-remainder, key))
    left = units - sum(parts.values())
    for _, key in sorted(remainders)[:left]:
        parts[key] += 1
    return {key: sign * value for key, value in parts.items()}


def _scaled(quantity: Decimal) -> int:
    if quantity < 0:
        raise ValueError("driver quantities cannot be negative")
    return int((quantity * DRIVER_SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))


def _ratio(weight: int, weight_sum: int) -> Decimal:
    return (Decimal(weight) / Decimal(weight_sum)).quantize(RATIO_QUANTUM)


def split_by_driver(
    amount_units: int,
    quantities: Mapping[str, Decimal],
    *,
    method: str,
    driver: str,
    part: str = "all",
    quantum: Decimal = CENT,
) -> list[Line]:
    """``amount_units`` split in proportion to ``quantities``; an ``unallocated`` line when no key
    has any (the amount never vanishes)."""
    weights = {key: _scaled(q) for key, q in quantities.items()}
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        if amount_units == 0:
            return []
        return [
            Line(UNALLOCATED, amount_units * quantum, method, driver, Decimal(0), Decimal(1), part)
        ]
    shares = split_exact(amount_units, weights)
    return [
        Line(
            key,
            shares[key] * quantum,
            method,
            driver,
            quantities[key],
            _ratio(weights[key], weight_sum),
            part,
        )
        for key in sorted(weights)
        if weights[key] or shares[key]
    ]


def allocate(
    amount: Decimal,
    rule: Rule,
    drivers: Mapping[str, Decimal],
    *,
    active: Sequence[str] | None = None,
    weights: Mapping[str, Decimal] | None = None,
    quantum: Decimal = CENT,
) -> list[Line]:
    """Split ``amount`` by ``rule``.

    ``drivers`` maps each key to its driver quantity (for ``proportional`` with the ``runs``
    driver: run counts; with ``even``: anything, only the keys matter). ``active`` lists the keys
    active in the period (default: those with driver usage); ``weights`` are contract weights for
    a fixed part split by weights (default 1 each).
    """
    units = to_minor(amount, quantum)
    if rule.method == Method.USAGE:
        return split_by_driver(
            units, drivers, method=rule.method, driver=rule.driver, quantum=quantum
        )
    if rule.method == Method.PROPORTIONAL:
        if rule.driver == "even":  # evenly over the keys active in the period
            members = active if active is not None else [k for k, q in drivers.items() if q > 0]
            quantities = {key: Decimal(1) for key in members}
        else:
            quantities = dict(drivers)
        return split_by_driver(
            units, quantities, method=rule.method, driver=rule.driver, quantum=quantum
        )
    # fixed + variable
    if rule.fixed_amount is not None:
        # The fixed part has the pool's sign (a credit pool credits its fixed part too) and never
        # exceeds the pool.
        sign = -1 if units < 0 else 1
        fixed_units = sign * min(abs(to_minor(rule.fixed_amount, quantum)), abs(units))
    elif rule.fixed_fraction is not None:
        fixed_units = to_minor(Decimal(units) * rule.fixed_fraction, Decimal(1))
    else:  # Rule refuses this already
        raise ValueError("fixed + variable needs a fixed amount or a fixed fraction")
    variable_units = units - fixed_units
    members = list(active) if active is not None else [k for k, q in drivers.items() if q > 0]
    if rule.fixed_split == "weights":
        fixed_quantities = {k: (weights or {}).get(k, Decimal(1)) for k in members}
        fixed_driver = "contract_weight"
    else:
        fixed_quantities = {k: Decimal(1) for k in members}
        fixed_driver = "even"
    lines = split_by_driver(
        fixed_units,
        fixed_quantities,
        method=rule.method,
        driver=fixed_driver,
        part="fixed",
        quantum=quantum,
    )
    lines += split_by_driver(
        variable_units,
        drivers,
        method=rule.method,
        driver=rule.driver,
        part="variable",
        quantum=quantum,
    )
    return lines


def split_line(
    line: Line,
    quantities: Mapping[str, Decimal],
    *,
    active: Sequence[str] | None = None,
    quantum: Decimal = CENT,
) -> list[Line]:
    """The second level: one tenant's line split across its projects the way the line itself was
    made: by the same driver's project quantities, or evenly across the tenant's active projects
    for an even or contract-weight part."""
    units = to_minor(line.amount, quantum)
    if line.driver in ("even", "contract_weight"):
        members = (
            list(active) if active is not None else [k for k, q in quantities.items() if q > 0]
        )
        return split_by_driver(
            units,
            {k: Decimal(1) for k in members},
            method=line.method,
            driver="even",
            part=line.part,
            quantum=quantum,
        )
    return split_by_driver(
        units, quantities, method=line.method, driver=line.driver, part=line.part, quantum=quantum
    )


def totals_by_key(lines: Sequence[Line]) -> dict[str, Decimal]:
    """Each key's total over the parts of a split (fixed and variable)."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        totals[line.key] = totals.get(line.key, Decimal(0)) + line.amount
    return totals


def round_lines(amounts: Sequence[Decimal], quantum: Decimal = CENT) -> list[Decimal]:
    """Round each amount to ``quantum`` so that the rounded amounts add up to the rounded total
    (largest remainder; ties by position): what an export needs so its lines sum to its total."""
    if not amounts:
        return []
    exact = [a / quantum for a in amounts]
    total_units = to_minor(sum(amounts, Decimal(0)), quantum)
    floors = [int(e.to_integral_value(rounding="ROUND_FLOOR")) for e in exact]
    left = total_units - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    if left >= 0:
        for i in order[:left]:
            floors[i] += 1
    else:  # negative totals: take units back from the smallest fractions first
        for i in list(reversed(order))[:-left]:
            floors[i] -= 1
    return [f * quantum for f in floors]
