"""A month's AI cost split by token kind, at list prices and after the tenant's contract terms,
and the calls that could not be priced (selectors for the finance exports; current tenant schema).

The portal charges what each call cost when it was stored (plus re-pricing corrections); that
stored cost is the truth here. It is split over the call's token kinds in proportion to each
kind's tokens times its contracted unit price, so the kinds add up exactly to what was charged.
The list cost is what the same tokens cost at the price book's prices, before contract terms:

- no contract term: list cost is the charged cost (the book price is what was charged);
- a discount: list cost is tokens times the book prices, so list minus charged is the discount;
- custom contract prices: list cost from the book's prices for the model when the book has it
  (base tier), else the charged cost (no list price known);
- client-supplied costs: no list price and no split (one line of all the call's tokens, list
  cost = charged cost).

Prices are looked up once per group of calls (a day of a project and model with the same
price entry and contract term) at the group's first call: a book price changing within such a
day while the input price stays the same is read as the earlier one (for the split and the list
cost only; charged amounts are never recomputed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing.pricing.catalogue import catalogue_key
from billing.pricing.domain import (
    MILLION,
    ContractOverride,
    PricePoint,
    PriceSchedule,
)
from billing.pricing.pricer import overrides_for, schedule_current
from factory_portal.money import HUNDRED
from factory_portal.periods import next_month
from factory_portal.tenants.models import Tenant
from usage import selectors as usage_selectors
from usage.selectors import LlmCostGroup

ZERO = Decimal(0)
KINDS = ("input", "output", "cache_read", "cache_write")
ALL_KINDS = "all"  # a client-supplied cost: not split by kind
Key = tuple[str, str, str]  # project, provider, model


@dataclass
class KindLine:
    """AI cost of one token kind of a project's model at one list and one contracted price."""

    project: str
    provider: str
    model: str
    kind: str  # input (uncached) | output | cache_read | cache_write | all (client cost)
    cost_source: str  # price_book | client
    sku_price_id: str  # the price book entry of the kind, or contract-<id>-<kind>
    list_unit_price: Decimal | None  # USD per million tokens, None when unknown
    contracted_unit_price: Decimal | None
    override_ref: int | None
    tokens: int = 0
    billed: Decimal = ZERO  # USD, exact (what the portal charged)
    list_cost: Decimal = ZERO  # USD, exact (at list prices)

    @property
    def key(self) -> Key:
        return self.project, self.provider, self.model


@dataclass
class Unpriced:
    """Calls of a project's model that no price could price: counted, never charged."""

    calls: int = 0
    tokens: int = 0  # input (cached included) + output


@dataclass(frozen=True)
class AiBreakdown:
    lines: list[KindLine]
    unpriced: dict[Key, Unpriced]

    def lines_of(self) -> dict[Key, list[KindLine]]:
        grouped: dict[Key, list[KindLine]] = defaultdict(list)
        for line in self.lines:
            grouped[line.key].append(line)
        return dict(grouped)


def ai_breakdown(*, tenant: Tenant, period: date) -> AiBreakdown:
    """The month ``period`` (its first day) of the current tenant schema, in one grouped read."""
    groups = usage_selectors.llm_cost_groups(start=period, end=next_month(period))
    overrides = {o.override_id: o for o in overrides_for(tenant.pk) if o.override_id is not None}
    return breakdown(groups, schedule_current(), overrides)


def breakdown(
    groups: list[LlmCostGroup],
    schedule: PriceSchedule,
    overrides: Mapping[int, ContractOverride],
) -> AiBreakdown:
    """Kind lines (merged across days when priced alike) and unpriced usage of ``groups``."""
    lines: dict[tuple[object, ...], KindLine] = {}
    unpriced: dict[Key, Unpriced] = defaultdict(Unpriced)
    for group in groups:
        key = (group.project, group.provider, group.model)
        if group.cost_source == "unpriced":
            found = unpriced[key]
            found.calls += group.calls
            found.tokens += _tokens(group)
            continue
        for line in _group_lines(group, schedule, overrides.get(group.override_ref or -1)):
            merge_key = (
                *line.key,
                line.kind,
                line.cost_source,
                line.sku_price_id,
                line.list_unit_price,
                line.contracted_unit_price,
                line.override_ref,
            )
            merged = lines.setdefault(merge_key, line)
            if merged is not line:
                merged.tokens += line.tokens
                merged.billed += line.billed
                merged.list_cost += line.list_cost
    return AiBreakdown(list(lines.values()), dict(unpriced))


def _tokens(group: LlmCostGroup) -> int:
    return (
        group.uncached_input_tokens
        + group.cached_input_tokens
        + group.cache_write_tokens
        + group.output_tokens
    )


def _kind_tokens(group: LlmCostGroup) -> dict[str, int]:
    return {
        "input": group.uncached_input_tokens,
        "output": group.output_tokens,
        "cache_read": group.cached_input_tokens,
        "cache_write": group.cache_write_tokens,
    }


def _with_fallback(prices: dict[str, Decimal | None]) -> dict[str, Decimal | None]:
    """Cache prices fall back to the input price, as pricing does."""
    for kind in ("cache_read", "cache_write"):
        if prices.get(kind) is None:
            prices[kind] = prices.get("input")
    return prices


def _book_points(
    group: LlmCostGroup, schedule: PriceSchedule
) -> dict[str, PricePoint | None] | None:
    """The book's entries that priced the group (from its input entry), or those the book has for
    the model (base tier) when the call was priced by the contract's own prices."""
    if group.price_ref is not None:
        entry = schedule.entry(group.price_ref)
        if entry is None:
            return None
        tier_tokens = entry.tier_start + 1 if entry.tier_start else 0
        points = schedule.points_at(entry.provider, entry.model, group.first_at, tier_tokens)
        return {**points, "input": entry}
    names = (group.provider, group.model)
    if not schedule.has_model(*names):
        names = catalogue_key(*names) or names
    points = schedule.points_at(*names, group.first_at, 0)
    return points if points["input"] is not None else None


def _group_lines(
    group: LlmCostGroup, schedule: PriceSchedule, override: ContractOverride | None
) -> list[KindLine]:
    if group.cost_source != "price_book":
        return [
            KindLine(
                group.project,
                group.provider,
                group.model,
                ALL_KINDS,
                group.cost_source,
                "",
                None,
                None,
                None,
                _tokens(group),
                group.cost,
                group.cost,
            )
        ]
    points = _book_points(group, schedule)
    list_prices = _with_fallback(
        {k: (points[k].price_per_mtok if points and points[k] else None) for k in KINDS}
    )
    sku = {k: str(points[k].entry_id) if points and points[k] else "" for k in KINDS}
    if points:
        sku = {k: sku[k] or sku["input"] for k in KINDS}
    contracted: dict[str, Decimal | None] = dict(list_prices)
    if override is not None and override.prices is not None:
        prices = override.prices
        contracted = _with_fallback(
            {
                "input": prices.input,
                "output": prices.output,
                "cache_read": prices.cache_read,
                "cache_write": prices.cache_write,
            }
        )
        sku = {k: f"contract-{override.override_id}-{k}" for k in KINDS}
    elif override is not None and override.discount_percent is not None:
        rate = (HUNDRED - override.discount_percent) / HUNDRED
        contracted = {k: None if p is None else p * rate for k, p in list_prices.items()}
    tokens = _kind_tokens(group)
    kinds = [k for k in KINDS if tokens[k]] or ["input"]
    weights = [tokens[k] * (contracted[k] or ZERO) for k in kinds]
    billed = _split(group.cost, weights)
    lines = []
    for kind, amount in zip(kinds, billed, strict=True):
        list_price = list_prices[kind]
        if override is None or list_price is None:
            list_cost = amount  # no contract term, or no list price known: list = charged
        else:
            list_cost = tokens[kind] * list_price / MILLION
        lines.append(
            KindLine(
                group.project,
                group.provider,
                group.model,
                kind,
                group.cost_source,
                sku[kind],
                list_price,
                contracted[kind],
                group.override_ref,
                tokens[kind],
                amount,
                list_cost,
            )
        )
    return lines


def _split(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``amount`` in proportion to ``weights``, exactly: the last part takes the remainder (all of
    it on the first when the weights are zero)."""
    total = sum(weights, ZERO)
    if not total:
        return [amount] + [ZERO] * (len(weights) - 1)
    parts = [amount * w / total for w in weights[:-1]]
    return [*parts, amount - sum(parts, ZERO)]
