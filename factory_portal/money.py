"""Money: the cent, rounding to it, percentages and the display of amounts. Pure (no Django), so
domain modules use it too.

Amounts are ``Decimal`` USD. Rounding is half-even (banker's rounding, the ``decimal`` default)
and happens once, at the edge: for display, export and stored budgets. It must not hold rules of
a product (allocation keeps its largest-remainder rounding, pricing its stored cost precision).
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class NumberFormat:
    """How a workspace writes numbers on its pages: the thousands and decimal separators and
    whether the currency sign follows the amount."""

    label: str
    thousands: str
    decimal: str
    sign_after: bool = False


# A tenant's choice (``Tenant.number_format``) for its pages; exports, e-mails and the API always
# write the default (the API plain ``1234.57``) whatever it is.
NUMBER_FORMATS = {
    "en": NumberFormat("1,234.57 (English)", ",", "."),
    "de": NumberFormat("1.234,57 (German, Dutch, Spanish, Italian)", ".", ",", sign_after=True),
    "fr": NumberFormat("1 234,57 (French, Nordic)", "\u202f", ",", sign_after=True),
    "ch": NumberFormat("1\u2019234.57 (Swiss)", "\u2019", "."),
}
DEFAULT_FORMAT = "en"


def _style(fmt: str) -> NumberFormat:
    return NUMBER_FORMATS.get(fmt, NUMBER_FORMATS[DEFAULT_FORMAT])


def grouped(value: Decimal | int, places: int = 0, fmt: str = DEFAULT_FORMAT) -> str:
    """``value`` with ``places`` decimals (half-even) and thousands grouped in the number format
    ``fmt``: ``1234.5`` -> ``1,234.50`` (en) or ``1.234,50`` (de)."""
    style = _style(fmt)
    text = f"{Decimal(value).quantize(_quantum(places), rounding=ROUND_HALF_EVEN):,.{places}f}"
    if style.thousands == "," and style.decimal == ".":
        return text
    return text.replace(",", "\0").replace(".", style.decimal).replace("\0", style.thousands)


def usd(amount: Decimal | int | None, fmt: str = DEFAULT_FORMAT) -> str:
    """``$1,234.57`` / ``-$3.00`` (``1.234,57 $`` in a format with the sign after): rounded
    half-even to the cent, for display only; ``—`` for None."""
    if amount is None:
        return MISSING
    cents = quantize_cents(Decimal(amount))
    sign = "-" if cents < 0 else ""
    digits = grouped(abs(cents), 2, fmt)
    if _style(fmt).sign_after:
        return f"{sign}{digits}\u00a0$"
    return f"{sign}${digits}"


def ratio_percent(ratio: Decimal | float | None, fmt: str = DEFAULT_FORMAT) -> str:
    """A ratio shown as a percentage to two decimals: ``0.4`` -> ``40.00%`` (``40,00%`` in a
    format with a decimal comma); ``—`` for None."""
    if ratio is None:
        return MISSING
    return f"{grouped(percent(Decimal(ratio), 1, 2), 2, fmt)}%"


def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)
