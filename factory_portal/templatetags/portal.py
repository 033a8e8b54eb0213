"""Template filters for money and durations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django import template

from billing.domain.pricing import quantize_cents

register = template.Library()


@register.filter
def usd(amount: Decimal | None) -> str:
    """``$1,234.57``: rounded half-even to the cent, for display only."""
    if amount is None:
        return "—"
    cents = quantize_cents(Decimal(amount))
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"


@register.filter
def elapsed(start: datetime | None, now: datetime) -> str:
    """``1h 04m`` / ``3m 12s`` between ``start`` and ``now``."""
    if start is None:
        return "—"
    seconds = max(0, int((now - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


@register.filter
def duration_ms(value: int | None) -> str:
    """``1h 04m``, ``3m 12s`` or ``850 ms``."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value} ms"
    seconds = value // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


@register.filter
def percent(ratio: Decimal | None) -> str:
    """``0.4`` -> ``40.00%``."""
    if ratio is None:
        return "—"
    return f"{(Decimal(ratio) * 100).quantize(Decimal('0.01'))}%"
