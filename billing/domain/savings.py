"""Savings a tenant can act on: what prompt caching saved (and what its cache writes cost), which
cheaper models already did a step as well, and the recommendations built from both. Pure: token
counts, prices and (run, step) figures in, Decimals out; no database, no rounding (callers round
once, at the edge).

Prices are ``TokenPrices`` in USD per million tokens with cache prices filled in (the tenant's
prices in force, ``billing.pricing.domain.prices_in_force``). Rates are exact fractions (0..1).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.pricing.domain import MILLION, TokenPrices
from factory_portal.money import HUNDRED, usd

ZERO = Decimal(0)
MONTH_DAYS = 30  # "a month" of an estimated saving
TOLERANCE_POINTS = Decimal(2)  # first-pass success a cheaper model may lose, percentage points
MIN_PAIRS = 30  # (run, step) pairs each model needs before it is compared
LOW_HIT_RATE = Decimal("0.10")  # below this a model's prompt caching counts as off
MIN_REFERENCE_RATE = Decimal("0.30")  # a hit rate seen elsewhere that makes caching worth it
MIN_CACHE_INPUT_TOKENS = 1_000_000  # input tokens in the period before caching is advised


@dataclass(frozen=True)
class CacheTokens:
    input_tokens: int = 0  # every input token, cached and cache-write ones included
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: CacheTokens) -> CacheTokens:
        return CacheTokens(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def hit_rate(self) -> Decimal | None:
        """Cached share of input tokens; None without input."""
        if not self.input_tokens:
            return None
        return Decimal(self.cached_input_tokens) / self.input_tokens

    @property
    def write_share(self) -> Decimal:
        return Decimal(self.cache_write_tokens) / self.input_tokens if self.input_tokens else ZERO


@dataclass(frozen=True)
class CacheSaving:
    """USD, unrounded. ``gross``: cached tokens x (input price - cache-read price); ``premium``:
    cache-write tokens x (cache-write price - input price), what writing the cache cost on top
    of sending the tokens uncached (negative when a provider charges less for writes)."""

    gross: Decimal = ZERO
    premium: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.gross - self.premium

    def __add__(self, other: CacheSaving) -> CacheSaving:
        return CacheSaving(self.gross + other.gross, self.premium + other.premium)


def _cache_price(price: Decimal | None, prices: TokenPrices) -> Decimal:
    return prices.input if price is None else price


def cache_saving(tokens: CacheTokens, prices: TokenPrices) -> CacheSaving:
    """What caching saved on ``tokens`` at ``prices`` (USD per million tokens), unrounded."""
    read = _cache_price(prices.cache_read, prices)
    write = _cache_price(prices.cache_write, prices)
    return CacheSaving(
        gross=tokens.cached_input_tokens * (prices.input - read) / MILLION,
        premium=tokens.cache_write_tokens * (write - prices.input) / MILLION,
    )


# Cheaper models per step


@dataclass(frozen=True)
class StepModel:
    """One model's settled (run, step) pairs on a template's step over the period."""

    template: str
    step: str
    provider: str
    model: str
    pairs: int
    first_pass: int
    cost: Decimal  # USD, the pairs' AI cost

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def first_pass_rate(self) -> Decimal:
        return Decimal(self.first_pass) / self.pairs

    @property
    def cost_per_pair(self) -> Decimal:
        return self.cost / self.pairs


def within_tolerance(candidate: StepModel, current: StepModel, tolerance_points: Decimal) -> bool:
    """Whether ``candidate``'s first-pass rate is at least ``current``'s minus
    ``tolerance_points`` percentage points (exact: compared as cross-multiplied integers, so an
    edge of exactly the tolerance counts as within)."""
    left = HUNDRED * candidate.first_pass * current.pairs
    right = (
        HUNDRED * current.first_pass * candidate.pairs
        - tolerance_points * candidate.pairs * current.pairs
    )
    return left >= right


@dataclass(frozen=True)
class CheaperModel:
    current: StepModel
    cheaper: StepModel
    period_days: int

    @property
    def monthly_pairs(self) -> Decimal:
        """The current model's pairs per ``MONTH_DAYS`` days at the period's pace."""
        return Decimal(self.current.pairs) * MONTH_DAYS / self.period_days

    @property
    def monthly_saving(self) -> Decimal:
        """(current cost per pair - cheaper cost per pair) x the current model's pairs per
        month: USD, unrounded."""
        return (self.current.cost_per_pair - self.cheaper.cost_per_pair) * self.monthly_pairs


def cheaper_models(
    rows: Iterable[StepModel],
    *,
    period_days: int,
    tolerance_points: Decimal = TOLERANCE_POINTS,
    min_pairs: int = MIN_PAIRS,
) -> list[CheaperModel]:
    """For each template's step and each model with at least ``min_pairs`` pairs on it, the
    cheapest other model with as much evidence, a lower cost per pair and a first-pass rate
    within ``tolerance_points`` of it; biggest monthly saving first."""
    by_step: dict[tuple[str, str], list[StepModel]] = defaultdict(list)
    for row in rows:
        if row.pairs >= min_pairs:
            by_step[(row.template, row.step)].append(row)
    found = []
    for models in by_step.values():
        for current in models:
            candidates = [
                other
                for other in models
                if other is not current
                and other.cost_per_pair < current.cost_per_pair
                and within_tolerance(other, current, tolerance_points)
            ]
            if candidates:
                best = min(candidates, key=lambda m: (m.cost_per_pair, m.name))
                found.append(CheaperModel(current, best, period_days))
    return sorted(
        found, key=lambda c: (-c.monthly_saving, c.current.template, c.current.step, c.current.name)
    )


# Prompt caching left off


@dataclass(frozen=True)
class ModelCacheUse:
    """A project's use of a model over the period, with the tenant's prices for it (the latest
    in force in the period)."""

    project: str
    provider: str
    model: str
    tokens: CacheTokens
    prices: TokenPrices

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class CachingAdvice:
    use: ModelCacheUse
    reference: str  # where the reachable hit rate was seen
    reference_tokens: CacheTokens
    period_days: int

    @property
    def monthly_saving(self) -> Decimal:
        """What the project's input tokens per month would save at the reference's hit rate,
        less the cache writes at the reference's write share: USD, unrounded."""
        tokens = self.use.tokens
        prices = self.use.prices
        read = _cache_price(prices.cache_read, prices)
        write = _cache_price(prices.cache_write, prices)
        rate_gain = (self.reference_tokens.hit_rate or ZERO) - (tokens.hit_rate or ZERO)
        write_gain = self.reference_tokens.write_share - tokens.write_share
        per_token = rate_gain * (prices.input - read) - write_gain * (write - prices.input)
        monthly_tokens = Decimal(tokens.input_tokens) * MONTH_DAYS / self.period_days
        return monthly_tokens * per_token / MILLION


def caching_advice(
    uses: Sequence[ModelCacheUse],
    *,
    period_days: int,
    low_rate: Decimal = LOW_HIT_RATE,
    min_reference_rate: Decimal = MIN_REFERENCE_RATE,
    min_input_tokens: int = MIN_CACHE_INPUT_TOKENS,
) -> list[CachingAdvice]:
    """Projects' models whose cache hit rate is below ``low_rate`` on at least
    ``min_input_tokens`` input tokens, where the model has a cheaper cache-read price and a hit
    rate of at least ``min_reference_rate`` was reached in the tenant: by the same model in
    another project (the best such), else by every model together that caches (above
    ``low_rate``). Only advice with a positive saving; biggest first."""
    caching = [u for u in uses if (u.tokens.hit_rate or ZERO) >= low_rate]
    tenant_wide = sum((u.tokens for u in caching), CacheTokens())
    advice = []
    for use in uses:
        rate = use.tokens.hit_rate
        read = _cache_price(use.prices.cache_read, use.prices)
        if rate is None or rate >= low_rate or use.tokens.input_tokens < min_input_tokens:
            continue
        if read >= use.prices.input:
            continue
        same_model = [
            u
            for u in caching
            if (u.provider, u.model) == (use.provider, use.model)
            and u.project != use.project
            and u.tokens.input_tokens >= min_input_tokens
        ]
        if same_model:
            best = max(same_model, key=lambda u: (u.tokens.hit_rate or ZERO, u.project))
            reference, tokens = f"{use.name} in project {best.project}", best.tokens
        else:
            reference, tokens = "the tenant's models that cache", tenant_wide
        if (tokens.hit_rate or ZERO) < min_reference_rate:
            continue
        found = CachingAdvice(use, reference, tokens, period_days)
        if found.monthly_saving > 0:
            advice.append(found)
    return sorted(advice, key=lambda a: (-a.monthly_saving, a.use.project, a.use.name))


# Recommendations


def recommendation_key(kind: str, *parts: str) -> str:
    """A stable, URL-safe key: the same advice keeps its key (and so its dismissal) across
    periods and figures."""
    digest = hashlib.sha256("\x1f".join((kind, *parts)).encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


@dataclass(frozen=True)
class Recommendation:
    key: str
    kind: str  # caching | model
    title: str
    monthly_saving: Decimal  # USD, unrounded
    period_start: date
    period_end: date  # inclusive
    evidence: dict[str, object] = field(default_factory=dict)


def _percent_text(rate: Decimal | None) -> str:
    return "n/a" if rate is None else f"{rate * HUNDRED:.1f}%"


def recommendation_from_model(found: CheaperModel, start: date, end: date) -> Recommendation:
    current, cheaper = found.current, found.cheaper
    return Recommendation(
        key=recommendation_key("model", current.template, current.step, current.name, cheaper.name),
        kind="model",
        title=(
            f"Use {cheaper.name} instead of {current.name} for step {current.step} of template"
            f" {current.template or '(none)'}: first-pass success"
            f" {_percent_text(cheaper.first_pass_rate)} against"
            f" {_percent_text(current.first_pass_rate)}, {usd(cheaper.cost_per_pair)} against"
            f" {usd(current.cost_per_pair)} per run of the step"
        ),
        monthly_saving=found.monthly_saving,
        period_start=start,
        period_end=end,
        evidence={
            "template": current.template,
            "step": current.step,
            "current": _model_evidence(current),
            "cheaper": _model_evidence(cheaper),
            "monthly_pairs": found.monthly_pairs,
        },
    )


def _model_evidence(row: StepModel) -> dict[str, object]:
    return {
        "provider": row.provider,
        "model": row.model,
        "pairs": row.pairs,
        "first_pass": row.first_pass,
        "first_pass_rate": row.first_pass_rate,
        "cost_per_pair": row.cost_per_pair,
    }


def recommendation_from_caching(found: CachingAdvice, start: date, end: date) -> Recommendation:
    use = found.use
    return Recommendation(
        key=recommendation_key("caching", use.project, use.name),
        kind="caching",
        title=(
            f"Enable prompt caching on {use.name} for project {use.project}: its cache hit rate"
            f" is {_percent_text(use.tokens.hit_rate)} while {found.reference} reach"
            f" {_percent_text(found.reference_tokens.hit_rate)}"
        ),
        monthly_saving=found.monthly_saving,
        period_start=start,
        period_end=end,
        evidence={
            "project": use.project,
            "provider": use.provider,
            "model": use.model,
            "input_tokens": use.tokens.input_tokens,
            "hit_rate": use.tokens.hit_rate,
            "reference": found.reference,
            "reference_hit_rate": found.reference_tokens.hit_rate,
            "input_price_per_mtok": use.prices.input,
            "cache_read_price_per_mtok": _cache_price(use.prices.cache_read, use.prices),
        },
    )
