"""Template filters of the operator console's price book: unit prices and plain decimals."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def unit_price(value: Decimal | None) -> str:
    """A price per million tokens with every significant digit (at least cents): ``$0.075``,
    ``$2.50``, ``$10.00``. Unit prices are not money amounts, so they are never rounded."""
    if value is None:
        return "—"
    price = Decimal(value).normalize()
    places = max(2, -int(price.as_tuple().exponent))
    return f"${price:,.{places}f}"


@register.filter
def plain_number(value: Decimal | None) -> str:
    """A decimal without trailing zeros or exponent: ``12.5``, ``10``."""
    if value is None:
        return "—"
    return f"{Decimal(value).normalize():f}"
