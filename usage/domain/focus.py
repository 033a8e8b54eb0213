"""FOCUS 1.0-1.2 cost-and-usage rows (pure parsing, no database).

Real exports are messy; this tolerates what the FinOps Foundation sample shows: ``NULL`` literals,
``2024-09-01 00:00:00`` datetimes (UTC assumed) as well as ISO 8601 with a zone, enum values in
any case (``Usage-Based`` / ``Usage-based``), empty optional values, negative costs (credits) and
JSON tags with duplicated keys (the last one wins, as in JSON.parse). Costs stay ``Decimal`` with
every digit of the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from factory_portal import periods

REQUIRED_COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "ChargeCategory",
    "ServiceCategory",
    "ProviderName",
)
V11_COLUMNS = frozenset(
    {
        "BillingAccountType",
        "CapacityReservationId",
        "ServiceSubcategory",
        "SkuMeter",
        "SkuPriceDetails",
        "SubAccountType",
        "InvoiceId",
    }
)
V12_COLUMNS = frozenset(
    {
        "PricingCurrency",
        "PricingCurrencyEffectiveCost",
        "PricingCurrencyListUnitPrice",
        "CommitmentDiscountQuantity",
    }
)
NULLS = frozenset({"", "NULL", "null", "None"})
SUPPORTED_CURRENCIES = frozenset({"USD"})

CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
SERVICE_CATEGORIES = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)
_CANONICAL = {v.lower(): v for v in CHARGE_CATEGORIES + SERVICE_CATEGORIES}


class FocusRowError(Exception):
    def __init__(self, line: int, column: str, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line, self.column, self.message = line, column, message


@dataclass(frozen=True)
class FocusCharge:
    period: date  # first day of the billing period's month
    provider: str
    service_category: str
    charge_category: str
    currency: str
    billed_cost: Decimal
    effective_cost: Decimal
    list_cost: Decimal
    tags: dict[str, Any]


def focus_version(columns: list[str]) -> str:
    present = set(columns)
    if present & V12_COLUMNS:
        return "1.2"
    if present & V11_COLUMNS:
        return "1.1"
    return "1.0"


def missing_columns(columns: list[str]) -> list[str]:
    return [c for c in REQUIRED_COLUMNS if c not in columns]


def _value(row: dict[str, str], column: str) -> str | None:
    raw = row.get(column)
    if raw is None or raw.strip() in NULLS:
        return None
    return raw.strip()


def _decimal(row: dict[str, str], column: str, line: int, *, required: bool) -> Decimal:
    raw = _value(row, column)
    if raw is None:
        if required:
            raise FocusRowError(line, column, "is empty but FOCUS requires it")
        return Decimal(0)
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise FocusRowError(line, column, f"{raw[:40]!r} is not a decimal number") from None
    if not number.is_finite():
        raise FocusRowError(line, column, "must be finite")
    return number


def parse_datetime(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def canonical(value: str) -> str:
    return _CANONICAL.get(value.strip().lower(), value.strip())


def _tags(raw: str | None, line: int) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        tags = json.loads(raw)  # duplicated keys: the last one wins
    except ValueError:
        raise FocusRowError(line, "Tags", "is not a JSON object") from None
    if not isinstance(tags, dict):
        raise FocusRowError(line, "Tags", "is not a JSON object")
    return tags


def charge_parse(row: dict[str, str], line: int, *, with_tags: bool = False) -> FocusCharge:
    start_raw = _value(row, "BillingPeriodStart")
    if start_raw is None:
        raise FocusRowError(line, "BillingPeriodStart", "is empty but FOCUS requires it")
    try:
        start = parse_datetime(start_raw)
    except ValueError:
        raise FocusRowError(
            line, "BillingPeriodStart", f"{start_raw[:40]!r} is not a date and time"
        ) from None
    try:
        period = periods.day_check(periods.month_of(start.date()))
    except periods.PeriodError as exc:
        raise FocusRowError(line, "BillingPeriodStart", str(exc)) from None
    currency = _value(row, "BillingCurrency")
    if currency is None or len(currency) != 3:
        raise FocusRowError(line, "BillingCurrency", "must be a 3-letter currency code")
    if currency.upper() not in SUPPORTED_CURRENCIES:
        raise FocusRowError(
            line,
            "BillingCurrency",
            f"{currency} bills are not supported: the portal bills in USD; convert first",
        )
    return FocusCharge(
        period=period,
        provider=_value(row, "ProviderName") or "Unknown",
        service_category=canonical(_value(row, "ServiceCategory") or "Other"),
        charge_category=canonical(_value(row, "ChargeCategory") or "Usage"),
        currency=currency.upper(),
        billed_cost=_decimal(row, "BilledCost", line, required=True),
        effective_cost=_decimal(row, "EffectiveCost", line, required=True),
        list_cost=_decimal(row, "ListCost", line, required=False),
        tags=_tags(_value(row, "Tags"), line) if with_tags else {},
    )
