"""Why AI cost changed between two periods, in dollars (pure: no database, no Django).

The AI cost of a period is rebuilt exactly from factors per cell (template, provider, model)::

    cost(cell) = R * r(t) * n(cell) * e(cell) * (1 + waste(t))

- ``R`` runs of the period (**volume**); ``r(t)`` template ``t``'s share of them;
- ``n`` useful tokens (input + output) per run of the template spent on the model, and the
  shape of those tokens (input share, cache-write share of input);
- ``e`` cost per token: the book prices of the model (per token kind, in force in the period)
  at the cell's **prompt-cache hit rate** (cached input tokens / input tokens), times the
  cell's ratio of actual cost to book cost (contract terms, prices changing inside the period);
  a cell the book cannot price keeps its plain cost per token;
- ``waste(t)``: the template's cost of failed runs and of retried attempts as a multiple of its
  other cost (capped at 95% of the template's cost; more shows as tokens per run).

The change B - A is split by sequential substitution in this fixed order: volume (``R``), mix
(first the templates' shares ``r``, then tokens per run and their shape ``n``: models, templates
and, through tokens per run, steps), cache (the hit rates), unit price (prices and price ratios),
waste. The order goes from "how much work" through "what work" to "what it cost per token" and
last "what was thrown away", so each part is priced at the previous parts' new values. Each
step's part is (cost with the step's factors of B) - (cost before the step): the parts telescope
from cost A to cost B, so nothing is left over. Arithmetic is exact (gmpy2's ``mpq``, rationals
in GMP: four times as fast here as Python's ``Fraction``, with the same answers) until the
parts are rounded to cents with the largest remainder, so they add up to (B in cents) - (A in
cents) exactly; each part's lines are rounded the same way to the part.

A cell or template present in one period only takes its shape, hit rate, prices and waste from
the other, so a new model or template shows as mix: a new template as its share of runs, a new
model of a known template as tokens per run. Usage in a template with no run counted
counts as one run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from math import floor

from gmpy2 import mpq

from billing.pricing.domain import TokenPrices
from factory_portal.money import grouped, usd

Number = int | Decimal | mpq
PARTS = ("volume", "mix", "cache", "unit_price", "waste")
PART_LABELS = {
    "volume": "Volume (runs)",
    "mix": "Mix (templates, models, tokens per run)",
    "cache": "Prompt-cache hit rate",
    "unit_price": "Unit price",
    "waste": "Waste (failed runs, retries)",
}
TOP_LINES = 5
OTHER = "everything else"
WASTE_CAP = mpq(19, 20)
MILLION = 1_000_000
ZERO = mpq(0)


@dataclass(frozen=True)
class CellUsage:
    """One period's AI usage of a template on a model (token counts as the rollups keep them:
    input includes cached and cache-write tokens), its cost in USD and the model's book prices
    in force in the period (USD per million tokens; None when the book has none)."""

    template: str
    provider: str
    model: str
    input_tokens: Number
    output_tokens: Number
    cached_input_tokens: Number
    cache_write_tokens: Number
    cost: Decimal
    prices: TokenPrices | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.template, self.provider, self.model)


@dataclass(frozen=True)
class PeriodUsage:
    """What one period consumed: usage cells, runs per template, and per template the AI cost
    of failed runs and of retried attempts (USD)."""

    cells: tuple[CellUsage, ...]
    runs: Mapping[str, Number] = field(default_factory=dict)
    failed_cost: Mapping[str, Decimal] = field(default_factory=dict)
    retry_cost: Mapping[str, Decimal] = field(default_factory=dict)

    def scaled(self, factor: mpq) -> PeriodUsage:
        """Every quantity times ``factor`` (a trailing window as an average hour)."""

        def times(value: Number) -> Decimal:
            exact = mpq(value) * factor
            return Decimal(int(exact.numerator)) / Decimal(int(exact.denominator))

        return PeriodUsage(
            cells=tuple(
                replace(
                    c,
                    input_tokens=mpq(c.input_tokens) * factor,
                    output_tokens=mpq(c.output_tokens) * factor,
                    cached_input_tokens=mpq(c.cached_input_tokens) * factor,
                    cache_write_tokens=mpq(c.cache_write_tokens) * factor,
                    cost=times(c.cost),
                )
                for c in self.cells
            ),
            runs={t: mpq(v) * factor for t, v in self.runs.items()},
            failed_cost={t: times(v) for t, v in self.failed_cost.items()},
            retry_cost={t: times(v) for t, v in self.retry_cost.items()},
        )

    @property
    def cost(self) -> Decimal:
        return sum((c.cost for c in self.cells), Decimal(0))


@dataclass(frozen=True)
class ChangeLine:
    """One contributor to a part: ``label`` says what moved, ``text`` adds the amount."""

    label: str
    amount: Decimal  # USD, to the cent
    dims: dict[str, str]

    @property
    def text(self) -> str:
        return f"{self.label}: {signed_usd(self.amount)}"


@dataclass(frozen=True)
class ChangePart:
    part: str
    amount: Decimal  # USD, to the cent
    lines: tuple[ChangeLine, ...]

    @property
    def label(self) -> str:
        return PART_LABELS[self.part]


@dataclass(frozen=True)
class CostChange:
    """Cost A and B and the change to the cent; the parts add up to ``change`` exactly."""

    before: Decimal
    after: Decimal
    parts: tuple[ChangePart, ...]

    @property
    def change(self) -> Decimal:
        return self.after - self.before

    def parts_json(self) -> list[dict[str, object]]:
        """The parts and their lines as the API and alerts write them (amounts as text)."""
        return [
            {
                "part": part.part,
                "label": part.label,
                "amount": f"{part.amount:.2f}",
                "lines": [
                    {"text": line.text, "amount": f"{line.amount:.2f}", **line.dims}
                    for line in part.lines
                ],
            }
            for part in self.parts
        ]

    def top_lines(self, count: int = 3) -> list[ChangeLine]:
        """The ``count`` biggest lines of any part (the alerts' summary)."""
        lines = [line for part in self.parts for line in part.lines if line.label != OTHER]
        return sorted(lines, key=lambda line: -abs(line.amount))[:count]


def signed_usd(amount: Decimal) -> str:
    """``+$812.40`` / ``-$3.00`` / ``$0.00`` (the API's and alerts' plain format)."""
    return f"+{usd(amount)}" if amount > 0 else usd(amount)


# -- the factor model ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Price:
    """Cost per token as a function of hit rate and token shape: ``ratio`` x book cost per
    token, or a plain ``flat`` cost per token when the book cannot price the cell."""

    prices: TokenPrices | None
    ratio: mpq
    flat: mpq | None


@dataclass(frozen=True)
class _Cell:
    tokens: mpq  # input + output (1 when none: a cost without tokens)
    per_run: mpq  # useful tokens per run
    input_share: mpq
    write_share: mpq  # of input
    hit_rate: mpq  # of input
    price: _Price
    input_tokens: mpq
    cached_tokens: mpq


@dataclass(frozen=True)
class _Period:
    runs: dict[str, mpq]  # template -> runs (a template with usage counts at least one)
    total_runs: mpq
    real_runs: mpq
    cost: dict[str, mpq]  # template -> cost
    failed: dict[str, mpq]  # template -> failed-run multiple of useful cost
    retried: dict[str, mpq]
    cells: dict[tuple[str, str, str], _Cell]


@lru_cache(maxsize=1024)
def _kind_prices(prices: TokenPrices) -> tuple[mpq, mpq, mpq, mpq]:
    """Input, cache read, cache write and output prices as fractions (a missing cache price is
    the input price; a missing output price is zero)."""
    base = mpq(prices.input)
    read = mpq(prices.cache_read) if prices.cache_read is not None else base
    wrote = mpq(prices.cache_write) if prices.cache_write is not None else base
    out = mpq(prices.output) if prices.output is not None else ZERO
    return base, read, wrote, out


def _book_per_token(prices: TokenPrices | None, hit: mpq, inp: mpq, write: mpq) -> mpq:
    """Book cost (USD) of one token of a cell with hit rate ``hit``, input share ``inp`` and
    cache-write share ``write`` of input."""
    if prices is None:
        return ZERO
    base, read, wrote, out = _kind_prices(prices)
    per_input = (1 - hit - write) * base + hit * read + write * wrote
    return mpq(inp * per_input + (1 - inp) * out) / MILLION


def _unit_cost(price: _Price, hit: mpq, inp: mpq, write: mpq) -> mpq:
    if price.flat is not None:
        return price.flat
    return price.ratio * _book_per_token(price.prices, hit, inp, write)


def _period(usage: PeriodUsage) -> _Period:
    merged: dict[tuple[str, str, str], list[mpq]] = {}
    prices: dict[tuple[str, str, str], TokenPrices | None] = {}
    for c in usage.cells:
        row = merged.setdefault(c.key, [ZERO] * 5)
        for i, value in enumerate(
            (c.input_tokens, c.output_tokens, c.cached_input_tokens, c.cache_write_tokens, c.cost)
        ):
            row[i] += mpq(value)
        prices[c.key] = prices.get(c.key) or c.prices
    cost: dict[str, mpq] = defaultdict(mpq)
    for (template, _p, _m), row in merged.items():
        cost[template] += row[4]
    runs = {t: mpq(v) for t, v in usage.runs.items() if v > 0}
    for template in cost:
        runs.setdefault(template, mpq(1))
    failed: dict[str, mpq] = {}
    retried: dict[str, mpq] = {}
    for template, total in cost.items():
        lost_failed = max(ZERO, mpq(usage.failed_cost.get(template, 0)))
        lost_retry = max(ZERO, mpq(usage.retry_cost.get(template, 0)))
        lost = min(lost_failed + lost_retry, WASTE_CAP * total) if total > 0 else ZERO
        if lost <= 0:
            continue
        useful = total - lost
        failed[template] = lost * lost_failed / (lost_failed + lost_retry) / useful
        retried[template] = lost * lost_retry / (lost_failed + lost_retry) / useful
    cells = {}
    for key, (inp, out, cached, write, amount) in merged.items():
        template = key[0]
        tokens = inp + out or mpq(1)
        waste = 1 + failed.get(template, ZERO) + retried.get(template, ZERO)
        hit = cached / inp if inp else ZERO
        write_share = write / inp if inp else ZERO
        input_share = inp / tokens
        per_token = amount / tokens
        book = _book_per_token(prices[key], hit, input_share, write_share)
        price = (
            _Price(prices[key], per_token / book, None) if book else _Price(None, mpq(1), per_token)
        )
        cells[key] = _Cell(
            tokens=tokens,
            per_run=tokens / runs[template] / waste,
            input_share=input_share,
            write_share=write_share,
            hit_rate=hit,
            price=price,
            input_tokens=inp,
            cached_tokens=cached,
        )
    return _Period(
        runs=runs,
        total_runs=sum(runs.values(), ZERO),
        real_runs=sum((mpq(v) for v in usage.runs.values()), ZERO),
        cost=dict(cost),
        failed=failed,
        retried=retried,
        cells=cells,
    )


@dataclass(frozen=True)
class _State:
    """Which period each factor is taken from, step by step."""

    volume: _Period
    share: _Period
    tokens: _Period
    cache: _Period
    price: _Period
    waste: _Period


class _Model:
    def __init__(self, a: _Period, b: _Period) -> None:
        self.a, self.b = a, b
        self.keys = sorted(set(a.cells) | set(b.cells))
        self.templates = sorted(set(a.runs) | set(b.runs))
        # The steps share most of their factors: a cell's cost per run is computed once per
        # distinct choice of periods (exact fractions are slow to multiply), keyed by their ids.
        self._per_run: dict[tuple[object, ...], mpq] = {}

    def _cell(self, period: _Period, key: tuple[str, str, str]) -> _Cell:
        found = period.cells.get(key)
        if found is not None:
            return found
        other = self.b if period is self.a else self.a
        if key[0] not in period.runs:  # the whole template is new (or gone): its share says so
            return other.cells[key]
        return replace(other.cells[key], per_run=ZERO)

    def share(self, period: _Period, template: str) -> mpq:
        source = period if period.total_runs else (self.b if period is self.a else self.a)
        if not source.total_runs:
            return ZERO
        return source.runs.get(template, ZERO) / source.total_runs

    def waste(self, period: _Period, template: str) -> tuple[mpq, mpq]:
        source = period if template in period.cost else (self.b if period is self.a else self.a)
        return source.failed.get(template, ZERO), source.retried.get(template, ZERO)

    def useful(self, s: _State, key: tuple[str, str, str]) -> mpq:
        runs = s.volume.total_runs * self.share(s.share, key[0])
        return runs * self._per_run_cost(s, key)

    def _per_run_cost(self, s: _State, key: tuple[str, str, str]) -> mpq:
        """Useful cost per run of the cell's template: tokens per run times cost per token."""
        memo = (id(s.tokens), id(s.cache), id(s.price), key)
        found = self._per_run.get(memo)
        if found is None:
            shape = self._cell(s.tokens, key)
            hit = self._cell(s.cache, key).hit_rate
            price = self._cell(s.price, key).price
            unit = _unit_cost(price, hit, shape.input_share, shape.write_share)
            found = self._per_run[memo] = shape.per_run * unit
        return found

    def cost(self, s: _State, key: tuple[str, str, str]) -> mpq:
        failed, retried = self.waste(s.waste, key[0])
        return self.useful(s, key) * (1 + failed + retried)


def _round_half_even(value: mpq) -> int:
    return int(round(value))  # noqa: RUF046 - mpq rounds half to even, to an mpz


def largest_remainder(values: list[mpq], target: int) -> list[int]:
    """``values`` (in cents) as whole cents adding up to ``target``: floors, then the missing
    cents to the biggest remainders (or the surplus taken from the smallest), ties by order."""
    if not values:
        return []
    floors = [int(floor(v)) for v in values]  # noqa: RUF046 - an mpq's floor is an mpz
    missing = target - sum(floors)
    order = sorted(range(len(values)), key=lambda i: (-(values[i] - floors[i]), i))
    if missing < 0:
        order.reverse()
    step = 1 if missing > 0 else -1
    for n in range(abs(missing)):
        floors[order[n % len(order)]] += step
    return floors


def _decimal_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _percent(value: mpq) -> str:
    return f"{grouped(Decimal(int(value.numerator) * 100) / int(value.denominator), 0)}%"


def _count(value: mpq) -> str:
    places = 0 if value.denominator == 1 or value >= 100 else 1
    return grouped(Decimal(int(value.numerator)) / int(value.denominator), places)


def _lines(
    contributions: Mapping[tuple[str, ...], mpq],
    label: Callable[[tuple[str, ...]], tuple[str, dict[str, str]]],
    target: int,
) -> tuple[ChangeLine, ...]:
    ranked = sorted(contributions.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    top = ranked[:TOP_LINES]
    rest = sum((v for _, v in ranked[TOP_LINES:]), ZERO)
    values = [v * 100 for _, v in top] + ([rest * 100] if len(ranked) > TOP_LINES else [])
    cents = largest_remainder(values, target)
    lines = []
    for (key, _), amount in zip(top, cents, strict=False):
        if amount:
            text, dims = label(key)
            lines.append(ChangeLine(text, _decimal_cents(amount), dims))
    if len(ranked) > TOP_LINES and cents[-1]:
        lines.append(ChangeLine(OTHER, _decimal_cents(cents[-1]), {}))
    return tuple(lines)


def _model_name(provider: str, model: str) -> str:
    return model or provider or "(unknown model)"


def _template_name(template: str) -> str:
    return template or "(no template)"


def cost_change(before: PeriodUsage, after: PeriodUsage) -> CostChange:
    """Decompose AI cost ``after`` - ``before`` into PARTS (USD, to the cent, largest
    remainder: the parts add up to the cent-rounded change exactly)."""
    a, b = _period(before), _period(after)
    model = _Model(a, b)
    states = [
        _State(a, a, a, a, a, a),
        _State(b, a, a, a, a, a),  # volume
        _State(b, b, a, a, a, a),  # mix: templates' shares of runs
        _State(b, b, b, a, a, a),  # mix: tokens per run
        _State(b, b, b, b, a, a),  # cache hit rates
        _State(b, b, b, b, b, a),  # unit prices
        _State(b, b, b, b, b, b),  # waste
    ]
    costs = [{key: model.cost(s, key) for key in model.keys} for s in states]
    cost_a = sum(a.cost.values(), ZERO)
    cost_b = sum(b.cost.values(), ZERO)
    steps = [sum(c.values(), ZERO) for c in costs]
    # The model rebuilds both periods exactly; the ends are pinned to them all the same.
    steps[0], steps[-1] = cost_a, cost_b
    deltas = [steps[i + 1] - steps[i] for i in range(len(steps) - 1)]
    exact = [deltas[0], deltas[1] + deltas[2], deltas[3], deltas[4], deltas[5]]
    before_cents, after_cents = _round_half_even(cost_a * 100), _round_half_even(cost_b * 100)
    part_cents = largest_remainder([v * 100 for v in exact], after_cents - before_cents)

    def by(
        step: int, group: Callable[[tuple[str, str, str]], tuple[str, ...]]
    ) -> dict[tuple[str, ...], mpq]:
        found: dict[tuple[str, ...], mpq] = defaultdict(mpq)
        for key in model.keys:
            found[group(key)] += costs[step][key] - costs[step - 1][key]
        return found

    volume: dict[tuple[str, ...], mpq] = {("runs",): exact[0]}
    mix = {**by(2, lambda k: ("template", k[0])), **by(3, lambda k: ("tokens", *k))}
    cache = by(4, lambda k: (k[1], k[2]))
    price = by(5, lambda k: (k[1], k[2]))
    waste: dict[tuple[str, ...], mpq] = defaultdict(mpq)
    for key in model.keys:
        useful = model.useful(states[5], key)
        fa, ra = model.waste(a, key[0])
        fb, rb = model.waste(b, key[0])
        waste[("failed", key[0])] += useful * (fb - fa)
        waste[("retried", key[0])] += useful * (rb - ra)

    labels = _Labels(model, a, b)
    parts = (
        ChangePart(
            "volume", _decimal_cents(part_cents[0]), _lines(volume, labels.volume, part_cents[0])
        ),
        ChangePart("mix", _decimal_cents(part_cents[1]), _lines(mix, labels.mix, part_cents[1])),
        ChangePart(
            "cache", _decimal_cents(part_cents[2]), _lines(cache, labels.cache, part_cents[2])
        ),
        ChangePart(
            "unit_price",
            _decimal_cents(part_cents[3]),
            _lines(price, labels.price(costs[4], costs[5]), part_cents[3]),
        ),
        ChangePart(
            "waste", _decimal_cents(part_cents[4]), _lines(waste, labels.waste, part_cents[4])
        ),
    )
    return CostChange(_decimal_cents(before_cents), _decimal_cents(after_cents), parts)


class _Labels:
    """The human text of each line: what moved, from what to what."""

    def __init__(self, model: _Model, a: _Period, b: _Period) -> None:
        self.model, self.a, self.b = model, a, b

    def volume(self, _key: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        return f"runs: {_count(self.a.real_runs)} -> {_count(self.b.real_runs)}", {}

    def mix(self, key: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        if key[0] == "template":
            template = key[1]
            runs_a = self.a.runs.get(template, ZERO)
            runs_b = self.b.runs.get(template, ZERO)
            share_a = runs_a / self.a.total_runs if self.a.total_runs else ZERO
            share_b = runs_b / self.b.total_runs if self.b.total_runs else ZERO
            return (
                f"runs of template {_template_name(template)}: {_count(runs_a)} -> "
                f"{_count(runs_b)} ({_percent(share_a)} -> {_percent(share_b)} of runs)",
                {"template": template},
            )
        _, template, provider, model = key
        per_run = []
        for period in (self.a, self.b):
            cell = period.cells.get((template, provider, model))
            runs = period.runs.get(template, ZERO)
            per_run.append(cell.per_run if cell and runs else ZERO)
        return (
            f"useful tokens per run of template {_template_name(template)} on "
            f"{_model_name(provider, model)}: {_count(per_run[0])} -> {_count(per_run[1])}",
            {"template": template, "provider": provider, "model": model},
        )

    def _hit(self, period: _Period, provider: str, model: str) -> mpq:
        cells = [c for k, c in period.cells.items() if k[1:] == (provider, model)]
        inputs = sum((c.input_tokens for c in cells), ZERO)
        return sum((c.cached_tokens for c in cells), ZERO) / inputs if inputs else ZERO

    def cache(self, key: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        provider, model = key
        hit_a, hit_b = self._hit(self.a, provider, model), self._hit(self.b, provider, model)
        moved = "rose" if hit_b > hit_a else "fell" if hit_b < hit_a else "stayed"
        return (
            f"cache hits on {_model_name(provider, model)} {moved} from {_percent(hit_a)} to "
            f"{_percent(hit_b)}",
            {"provider": provider, "model": model},
        )

    def price(
        self,
        before: Mapping[tuple[str, str, str], mpq],
        after: Mapping[tuple[str, str, str], mpq],
    ) -> Callable[[tuple[str, ...]], tuple[str, dict[str, str]]]:
        def label(key: tuple[str, ...]) -> tuple[str, dict[str, str]]:
            provider, model = key
            old = sum((v for k, v in before.items() if k[1:] == key), ZERO)
            new = sum((v for k, v in after.items() if k[1:] == key), ZERO)
            moved = (
                f"{'+' if new >= old else '-'}{_percent(abs(new - old) / old)}" if old else "new"
            )
            return (
                f"price of the same tokens on {_model_name(provider, model)}: {moved}",
                {"provider": provider, "model": model},
            )

        return label

    def waste(self, key: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        kind, template = key
        shares = []
        for period in (self.a, self.b):
            extra = (period.failed if kind == "failed" else period.retried).get(template, ZERO)
            total = 1 + period.failed.get(template, ZERO) + period.retried.get(template, ZERO)
            shares.append(extra / total)
        what = "failed runs" if kind == "failed" else "retried attempts"
        return (
            f"{what} of template {_template_name(template)}: {_percent(shares[0])} -> "
            f"{_percent(shares[1])} of its cost",
            {"template": template, "kind": kind},
        )
