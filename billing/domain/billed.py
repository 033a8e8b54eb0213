"""What AI providers billed, against what the portal estimated (pure: no database, no Django).

Reads three layouts of a provider's bill into rows of (provider, model, UTC day, USD amount):

- FOCUS 1.0-1.2 cost-and-usage CSV: the ``Usage`` charges of ``ServiceCategory`` "AI and Machine
  Learning"; ``BilledCost`` on the UTC day of ``ChargePeriodStart``; the model from ``x_Model``
  (FOCUS's prefix for provider columns), else ``ResourceName``, else ``SkuMeter``.
- OpenAI's Costs API (``GET /v1/organization/costs``, 1-day buckets, ``group_by=line_item``): the
  JSON page(s) as returned, or a CSV with one row per result (``start_time``, ``amount_value``,
  ``amount_currency``, ``line_item``); the model is the line item's text before its first comma.
- Anthropic's Cost API (``GET /v1/organizations/cost_report``, ``group_by=description``): the JSON
  page(s), or a CSV with one row per result (``starting_at``, ``amount``, ``currency``, ``model``).
  ``amount`` is in cents (a decimal string): ``"123.45"`` is $1.2345.

Then compares billed and estimated amounts per provider and model of a month (drift, tolerance)
and splits a true-up over tenants exactly to the cent. It must not read files or the database:
callers hand it text lines or parsed JSON.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from billing.domain.allocation import UNALLOCATED, split_by_driver, to_minor
from billing.pricing.catalogue import catalogue_key
from factory_portal.money import percent
from usage.domain.focus import NULLS, canonical, parse_datetime

FOCUS = "focus"
OPENAI = "openai"
ANTHROPIC = "anthropic"
FORMATS = (FOCUS, OPENAI, ANTHROPIC)
FORMAT_NAMES = {
    FOCUS: "FOCUS cost and usage",
    OPENAI: "OpenAI costs",
    ANTHROPIC: "Anthropic cost report",
}
AI_SERVICE = "AI and Machine Learning"
USAGE = "Usage"
MAX_AMOUNT = Decimal(10) ** 15  # one row of a real bill is far below a quadrillion dollars
FOCUS_COLUMNS = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ProviderName")
FOCUS_MODEL_COLUMNS = ("x_Model", "ResourceName", "SkuMeter")
OPENAI_COLUMNS = ("start_time", "amount_value")
ANTHROPIC_COLUMNS = ("starting_at", "amount")
CENTS = Decimal(100)

Key = tuple[str, str, date]  # provider, model, UTC day


class BilledFileError(Exception):
    """The whole file cannot be read (layout, encoding, JSON)."""


class BilledRowError(Exception):
    """One bad row: where (``line 5`` or ``data[0].results[2]``), which column, why."""

    def __init__(self, where: str, column: str, message: str) -> None:
        super().__init__(f"{where}, column {column}: {message}")
        self.where, self.column, self.message = where, column, message


@dataclass(frozen=True)
class BilledRow:
    provider: str  # normalised, see ``model_key``
    model: str
    day: date  # UTC
    amount: Decimal  # USD, every digit of the file


@dataclass(frozen=True)
class Skipped:
    """A row read but not an AI usage charge (another service, tax, a credit)."""

    where: str
    reason: str


def model_key(provider: str, model: str) -> tuple[str, str]:
    """One name for a provider and model however a bill or a client spells them: the
    ``genai-prices`` catalogue's ids when it knows the model (``OpenAI``/``gpt-4o-2024-08-06`` ->
    ``openai``/``gpt-4o``), else both lower-cased and stripped."""
    provider, model = provider.strip().lower(), model.strip()
    found = catalogue_key(provider, model) if model else None
    return found if found is not None else (provider, model.lower())


# --- reading ------------------------------------------------------------------------------------


def detect_csv(columns: list[str]) -> str:
    present = set(columns)
    for name, needed in (
        (FOCUS, FOCUS_COLUMNS),
        (OPENAI, OPENAI_COLUMNS),
        (ANTHROPIC, ANTHROPIC_COLUMNS),
    ):
        if present.issuperset(needed):
            return name
    if "BilledCost" in present:
        missing = [c for c in FOCUS_COLUMNS if c not in present]
        raise BilledFileError(f"a FOCUS file without column(s) {', '.join(missing)}")
    raise BilledFileError(
        "not a known bill layout: a FOCUS CSV needs " + ", ".join(FOCUS_COLUMNS)
        + "; an OpenAI costs CSV " + ", ".join(OPENAI_COLUMNS)
        + "; an Anthropic cost report CSV " + ", ".join(ANTHROPIC_COLUMNS)
    )  # fmt: skip


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in NULLS else text


def _amount(value: object, where: str, column: str) -> Decimal:
    text = _text(value)
    if text is None:
        raise BilledRowError(where, column, "is empty; an amount is required")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BilledRowError(where, column, f"{text[:40]!r} is not a decimal number") from None
    if not number.is_finite() or abs(number) >= MAX_AMOUNT:
        raise BilledRowError(where, column, f"{text[:40]!r} is not a real amount")
    return number


def _day(value: object, where: str, column: str) -> date:
    text = _text(value)
    if text is None:
        raise BilledRowError(where, column, "is empty; a date and time is required")
    try:
        if text.isdigit():  # Unix seconds, as OpenAI's API gives bucket bounds
            moment = datetime.fromtimestamp(int(text), tz=UTC)
        else:
            moment = parse_datetime(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BilledRowError(where, column, f"{text[:40]!r} is not a date and time") from None
    if not 2000 <= moment.year <= 2100:
        raise BilledRowError(where, column, f"{text[:40]!r} is outside 2000-2100")
    return moment.date()


def _usd(value: object, where: str, column: str) -> None:
    currency = _text(value)
    if currency is not None and currency.upper() != "USD":
        raise BilledRowError(
            where, column, f"{currency[:8].upper()} bills are not supported: the portal counts USD"
        )


def focus_row(row: Mapping[str, str], where: str) -> BilledRow | Skipped:
    service = canonical(_text(row.get("ServiceCategory")) or "")
    charge = canonical(_text(row.get("ChargeCategory")) or USAGE)
    _usd(row.get("BillingCurrency"), where, "BillingCurrency")
    amount = _amount(row.get("BilledCost"), where, "BilledCost")
    day = _day(row.get("ChargePeriodStart"), where, "ChargePeriodStart")
    if service != AI_SERVICE:
        return Skipped(where, f"service category {service or 'empty'}")
    if charge != USAGE:
        return Skipped(where, f"charge category {charge}")
    provider = _text(row.get("ProviderName"))
    if provider is None:
        raise BilledRowError(where, "ProviderName", "is empty; the provider is required")
    model = next((m for c in FOCUS_MODEL_COLUMNS if (m := _text(row.get(c)))), "")
    return BilledRow(*model_key(provider, model), day, amount)


def _line_item_model(line_item: object) -> str:
    text = _text(line_item) or ""
    return text.split(",", 1)[0].strip()  # "gpt-4o-2024-08-06, input" -> the model


def openai_row(row: Mapping[str, Any], where: str) -> BilledRow:
    _usd(row.get("amount_currency"), where, "amount_currency")
    start_column = "start_time" if _text(row.get("start_time")) else "start_time_iso"
    day = _day(row.get(start_column), where, start_column)
    amount = _amount(row.get("amount_value"), where, "amount_value")
    return BilledRow(*model_key("openai", _line_item_model(row.get("line_item"))), day, amount)


def anthropic_row(row: Mapping[str, Any], where: str) -> BilledRow:
    _usd(row.get("currency"), where, "currency")
    day = _day(row.get("starting_at"), where, "starting_at")
    amount = _amount(row.get("amount"), where, "amount") / CENTS
    return BilledRow(*model_key("anthropic", _text(row.get("model")) or ""), day, amount)


CSV_READERS: dict[str, Callable[[Mapping[str, str], str], BilledRow | Skipped]] = {
    FOCUS: focus_row,
    OPENAI: openai_row,
    ANTHROPIC: anthropic_row,
}


def csv_rows(lines: Iterable[str]) -> tuple[str, Iterator[tuple[str, Mapping[str, str]]]]:
    """The layout of a CSV bill and its rows with where they are (``line N``)."""
    reader = csv.DictReader(lines)
    layout = detect_csv(list(reader.fieldnames or []))

    def rows() -> Iterator[tuple[str, Mapping[str, str]]]:
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise BilledFileError(f"line {number} has more values than the header has names")
            yield f"line {number}", row

    return layout, rows()


def json_rows(text: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The layout of a Costs API / cost report JSON answer (one page, or a list of pages) and one
    flat row per result, each with the bucket's start and where it is."""
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise BilledFileError(f"not valid JSON: {exc}") from None
    except RecursionError:  # thousands of nested brackets: no cost export is shaped so
        raise BilledFileError("not valid JSON: nested too deeply") from None
    pages = document if isinstance(document, list) else [document]
    rows: list[tuple[str, dict[str, Any]]] = []
    layout = ""
    for p, page in enumerate(pages):
        buckets = page.get("data") if isinstance(page, dict) else None
        if not isinstance(buckets, list):
            raise BilledFileError(f"page {p}: no 'data' list of time buckets")
        for b, bucket in enumerate(buckets):
            prefix = f"{'' if len(pages) == 1 else f'[{p}].'}data[{b}]"
            if not isinstance(bucket, dict):
                raise BilledFileError(f"{prefix} is not an object")
            kind = ANTHROPIC if "starting_at" in bucket else OPENAI
            if layout and kind != layout:
                raise BilledFileError(f"{prefix} mixes OpenAI and Anthropic buckets")
            layout = kind
            results = bucket.get("results", bucket.get("result"))
            if not isinstance(results, list):
                raise BilledFileError(f"{prefix}: no 'results' list")
            for r, result in enumerate(results):
                if not isinstance(result, dict):
                    raise BilledFileError(f"{prefix}.results[{r}] is not an object")
                rows.append((f"{prefix}.results[{r}]", _flat(kind, bucket, result)))
    return layout or OPENAI, rows


def _flat(kind: str, bucket: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    if kind == ANTHROPIC:
        return {**result, "starting_at": bucket.get("starting_at")}
    raw = result.get("amount")
    amount: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "start_time": bucket.get("start_time"),
        "amount_value": amount.get("value"),
        "amount_currency": amount.get("currency"),
        "line_item": result.get("line_item"),
    }


# --- comparing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftLine:
    provider: str
    model: str
    billed: Decimal  # USD, unrounded
    estimated: Decimal
    difference: Decimal  # billed - estimated
    percent: Decimal | None  # difference as % of the estimate, 2 places; None without estimate
    within: bool
    # The month has a bill of this provider: a line without one is not compared (its bill may
    # just not be imported yet), so it is never outside the tolerance.
    provider_billed: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return self.provider, self.model

    @property
    def compared_within(self) -> bool | None:
        """``within`` for a line of a billed provider; None for one not compared."""
        return self.within if self.provider_billed else None


@dataclass(frozen=True)
class Unmatched:
    provider: str
    model: str
    day: date
    amount: Decimal


@dataclass(frozen=True)
class Drift:
    tolerance: Decimal  # percent
    lines: list[DriftLine]
    unmatched_billed: list[Unmatched]  # billed on a day the portal estimated nothing for
    unmatched_estimated: list[Unmatched]  # estimated on a day nothing was billed for

    @property
    def outside(self) -> list[DriftLine]:
        """The lines of billed providers outside the tolerance (what alerts)."""
        return [line for line in self.lines if line.provider_billed and not line.within]

    @property
    def any_billed(self) -> bool:
        return any(line.provider_billed for line in self.lines)

    @property
    def billed(self) -> Decimal:
        return sum((line.billed for line in self.lines), Decimal(0))

    @property
    def estimated(self) -> Decimal:
        return sum((line.estimated for line in self.lines), Decimal(0))


def drift_compare(
    billed: Mapping[Key, Decimal], estimated: Mapping[Key, Decimal], *, tolerance: Decimal
) -> Drift:
    """Billed against estimated per provider and model, summed over the days given (a month).
    A line is within tolerance when ``|billed - estimated| <= tolerance% of estimated``; a model
    billed without any estimate is outside (unless billed nothing). Only the providers with a
    bill among the days are compared: the others' lines say so (``provider_billed``) and are
    never ``outside`` (importing one provider's bill alerted every other provider's models at
    -100%)."""
    totals: dict[tuple[str, str], list[Decimal]] = {}
    for (provider, model, _), amount in billed.items():
        totals.setdefault((provider, model), [Decimal(0), Decimal(0)])[0] += amount
    for (provider, model, _), amount in estimated.items():
        totals.setdefault((provider, model), [Decimal(0), Decimal(0)])[1] += amount
    providers = {provider for provider, _, _ in billed}
    lines = []
    for (provider, model), (bill, estimate) in sorted(totals.items()):
        difference = bill - estimate
        share = percent(difference, estimate) if estimate else None
        within = abs(share) <= tolerance if share is not None else difference == 0
        rounded = share.quantize(Decimal("0.01")) if share is not None else None
        lines.append(
            DriftLine(
                provider, model, bill, estimate, difference, rounded, within, provider in providers
            )
        )
    return Drift(
        tolerance=tolerance,
        lines=lines,
        unmatched_billed=_unmatched(billed, estimated),
        unmatched_estimated=_unmatched(estimated, billed),
    )


def _unmatched(side: Mapping[Key, Decimal], other: Mapping[Key, Decimal]) -> list[Unmatched]:
    return [
        Unmatched(provider, model, day, amount)
        for (provider, model, day), amount in sorted(side.items())
        if amount and not other.get((provider, model, day))
    ]


def trueup_split(difference: Decimal, shares: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """``difference`` (USD, rounded half-even to the cent once) split over tenants in proportion
    to their estimated cost ``shares`` by largest remainder: the parts sum to the rounded
    difference exactly. Tenants without a positive share get nothing; when none has one, the
    whole amount is one ``unallocated`` part."""
    positive = {key: amount for key, amount in shares.items() if amount > 0}
    lines = split_by_driver(to_minor(difference), positive, method="usage", driver="estimated_cost")
    return {line.key: line.amount for line in lines if line.amount or line.key == UNALLOCATED}
