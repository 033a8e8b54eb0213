"""Money: the cent, rounding to it, percentages and the display of amounts. Pure (no Django), so
domain modules use it too.

Amounts are ``Decimal`` USD. Rounding is half-even (banker's rounding, the ``decimal`` default)
and happens once, at the edge: for display, export and stored budgets. It must not hold rules of
a product (allocation keeps its largest-remainder rounding, pricing its stored cost precision).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MISSING = "—"  # what a page shows for an amount or ratio it does not have


def quantize_cents(amount: Decimal) -> Decimal:
    """``amount`` in USD rounded half-even to the cent: ``0.125`` -> ``0.12``."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def cents_from_float(value: float) -> Decimal:
    """A float estimate (a forecast, a pandas column) as Decimal USD to the cent, rounded
    half-even on the float's exact binary value (``2.675`` -> ``2.67``)."""
    return Decimal(f"{value:.2f}")


def percent(part: Decimal | int, whole: Decimal | int, places: int | None = None) -> Decimal:
    """``part`` as a percentage of ``whole`` (``whole`` must not be zero), rounded half-even to
    ``places`` decimals, or exact to the context precision when ``places`` is None:
    ``percent(3, 4, 1)`` -> ``75.0``."""
    exact = Decimal(part) * 100 / whole
    return exact if places is None else exact.quantize(_quantum(places), rounding=ROUND_HALF_EVEN)


def percent_of(whole: Decimal, rate: Decimal | int) -> Decimal:
    """``rate`` percent of ``whole``, unrounded: ``percent_of(Decimal(200), 80)`` -> ``160``."""
    return whole * rate / HUNDRED


def usd(amount: Decimal | int | None) -> str:
    """``$1,234.57`` / ``-$3.00``: rounded half-even to the cent, for display only; ``—`` for
    None."""
    if amount is None:
        return MISSING
    cents = quantize_cents(Decimal(amount))
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"


def ratio_percent(ratio: Decimal | float | None) -> str:
    """A ratio shown as a percentage to two decimals: ``0.4`` -> ``40.00%``; ``—`` for None."""
    if ratio is None:
        return MISSING
    return f"{percent(Decimal(ratio), 1, 2)}%"


def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)
