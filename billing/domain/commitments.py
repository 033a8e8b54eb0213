"""Prepaid commitments and credits: how covered spend draws them down, day by day, and when the
remaining amount is expected to run out (pure: dates and Decimals in, frozen dataclasses out;
no Django, no database).

Rules:

- A commitment draws on its days ``start <= day <= last`` (the tenant's days) the spend it
  covers: AI cost, infrastructure, or both (``total``). Infrastructure is allocated per month,
  so a month's allocated infrastructure is spend of the month's last day: a month's covered
  spend is then exactly the monthly report's AI and infrastructure (to the cent), never a
  prorated guess. A day's negative spend (a re-pricing credit) draws nothing.
- Several may cover the same day. They draw in ``drawdown_order``: credits first (a grant
  expires unused otherwise), then the one ending soonest, then the one starting first, then the
  oldest (lowest id). Each draws what the ones before it left of the day's spend, never more
  than its own remaining amount: consumed never exceeds the amount, and a day's spend is drawn
  at most once over all of them.
- Amounts stay exact (the rollups' precision); rounding to the cent happens once, at the edge.
- Exhaustion: the forecast's running paths of daily AI cost (mean, lo80, hi80), from the day
  after the last actual day, continue the same drawdown. The expected day is the first day the
  mean path leaves nothing; the earliest day comes from the hi80 path (more spend), the latest
  from the lo80 path; ``None`` means "not before its end". Infrastructure is not forecast: an
  infrastructure-only commitment has no exhaustion forecast, and a total one forecasts its AI
  part (infrastructure arrives once a month, when the operator allocates).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

ZERO = Decimal(0)
CREDIT = "credit"
AI, INFRASTRUCTURE, TOTAL = "ai", "infrastructure", "total"


@dataclass(frozen=True)
class Terms:
    """A commitment as drawdown sees it. ``amount`` in the tenant's currency, two places."""

    id: int
    kind: str  # commitment | credit
    amount: Decimal
    start: date
    last: date  # inclusive; before ``start`` when it was ended before it began
    covers: str  # ai | infrastructure | total

    def active(self, day: date) -> bool:
        return self.start <= day <= self.last


@dataclass(frozen=True)
class DaySpend:
    """A day's spend of the tenant (exact): AI cost and the infrastructure booked that day (a
    month's allocation, on its last day)."""

    ai: Decimal = ZERO
    infrastructure: Decimal = ZERO


@dataclass(frozen=True)
class DayDraw:
    day: date
    drawn: Decimal
    remaining: Decimal  # after the day


@dataclass(frozen=True)
class Drawdown:
    terms: Terms
    days: tuple[DayDraw, ...] = field(default=())  # active days up to the last day drawn

    @property
    def consumed(self) -> Decimal:
        return sum((d.drawn for d in self.days), ZERO)

    @property
    def remaining(self) -> Decimal:
        return self.terms.amount - self.consumed

    @property
    def exhausted_on(self) -> date | None:
        """The day nothing was left any more (actual), if that happened."""
        return next((d.day for d in self.days if d.remaining <= 0), None)

    def drawn_between(self, start: date, end: date) -> Decimal:
        """What it drew on days ``start <= day < end``."""
        return sum((d.drawn for d in self.days if start <= d.day < end), ZERO)


def drawdown_order(terms: Iterable[Terms]) -> list[Terms]:
    """Credits first, then the one ending soonest, then starting first, then the oldest."""
    return sorted(terms, key=lambda t: (t.kind != CREDIT, t.last, t.start, t.id))


def drawdown(
    terms: Iterable[Terms],
    spend: Mapping[date, DaySpend],
    *,
    through: date,
    remaining: Mapping[int, Decimal] | None = None,
    since: date | None = None,
) -> dict[int, Drawdown]:
    """Each commitment's drawdown by ``spend`` over its active days up to ``through`` (and from
    ``since`` when given, continuing from ``remaining``: the forecast's use)."""
    ordered = drawdown_order(terms)
    left = {t.id: (remaining or {}).get(t.id, t.amount) for t in ordered}
    days: dict[int, list[DayDraw]] = {t.id: [] for t in ordered}
    if not ordered:
        return {}
    first = min(t.start for t in ordered)
    if since is not None:
        first = max(first, since)
    last = min(through, max(t.last for t in ordered))
    day = first
    while day <= last:
        today = spend.get(day, DaySpend())
        ai, infra = max(today.ai, ZERO), max(today.infrastructure, ZERO)
        for t in ordered:
            if not t.active(day):
                continue
            available = (ai if t.covers != INFRASTRUCTURE else ZERO) + (
                infra if t.covers != AI else ZERO
            )
            drawn = min(available, max(left[t.id], ZERO))
            left[t.id] -= drawn
            # The covered spend it took is no longer there for the ones after it: AI first.
            from_ai = min(drawn, ai) if t.covers != INFRASTRUCTURE else ZERO
            ai -= from_ai
            infra -= drawn - from_ai
            days[t.id].append(DayDraw(day, drawn, left[t.id]))
        day += timedelta(days=1)
    return {t.id: Drawdown(t, tuple(days[t.id])) for t in ordered}


class ForecastPath(Protocol):
    """A forecast day as exhaustion reads it (billing's ``ForecastDay`` is one)."""

    @property
    def day(self) -> date: ...
    @property
    def running_mean(self) -> Decimal: ...
    @property
    def running_lo80(self) -> Decimal: ...
    @property
    def running_hi80(self) -> Decimal: ...


@dataclass(frozen=True)
class Exhaustion:
    """When the remaining amount is expected to run out: ``expected`` by the forecast's mean,
    ``earliest`` (hi80 path) and ``latest`` (lo80 path); None: not before the commitment ends.
    ``forecast`` is False when there was nothing to forecast with."""

    expected: date | None
    earliest: date | None
    latest: date | None
    forecast: bool = True
    # The remaining amount after each forecast day on each path (for the burn-down chart).
    mean_path: tuple[tuple[date, Decimal], ...] = ()
    lo80_path: tuple[tuple[date, Decimal], ...] = ()  # remaining on the hi80 spend path
    hi80_path: tuple[tuple[date, Decimal], ...] = ()  # remaining on the lo80 spend path


NO_FORECAST = Exhaustion(None, None, None, forecast=False)


def _increments(
    forecast: Sequence[ForecastPath], after: date, attribute: str
) -> dict[date, DaySpend]:
    """A running path as daily AI spend, from the day after ``after``."""
    out: dict[date, DaySpend] = {}
    previous = ZERO
    for row in forecast:
        running: Decimal = getattr(row, attribute)
        if row.day > after:
            out[row.day] = DaySpend(ai=max(running - previous, ZERO))
        previous = running
    return out


def exhaustion(
    actual: Mapping[int, Drawdown], forecast: Sequence[ForecastPath], *, after: date
) -> dict[int, Exhaustion]:
    """Each commitment's forecast exhaustion, continuing its actual drawdown (through ``after``)
    with the forecast's paths. A commitment already used up has its actual day as all three."""
    terms = [d.terms for d in actual.values()]
    if not forecast or not terms:
        return {t.id: NO_FORECAST for t in terms}
    remaining = {i: d.remaining for i, d in actual.items()}
    through = forecast[-1].day
    paths = {
        name: drawdown(
            terms,
            _increments(forecast, after, attribute),
            through=through,
            remaining=remaining,
            since=after + timedelta(days=1),
        )
        for name, attribute in (
            ("mean", "running_mean"),
            ("hi", "running_hi80"),
            ("lo", "running_lo80"),
        )
    }
    out: dict[int, Exhaustion] = {}
    for i, done in actual.items():
        used_up = done.exhausted_on
        if used_up is not None or done.remaining <= 0:
            day = used_up or after
            out[i] = Exhaustion(day, day, day)
        elif done.terms.covers == INFRASTRUCTURE or done.terms.last <= after:
            out[i] = (
                NO_FORECAST if done.terms.covers == INFRASTRUCTURE else Exhaustion(None, None, None)
            )
        else:
            out[i] = Exhaustion(
                expected=paths["mean"][i].exhausted_on,
                earliest=paths["hi"][i].exhausted_on,
                latest=paths["lo"][i].exhausted_on,
                mean_path=_path(paths["mean"][i]),
                lo80_path=_path(paths["hi"][i]),
                hi80_path=_path(paths["lo"][i]),
            )
    return out


def _path(done: Drawdown) -> tuple[tuple[date, Decimal], ...]:
    return tuple((d.day, d.remaining) for d in done.days)


def consumed_percent(done: Drawdown) -> Decimal:
    """Consumed as a percent of the amount (exact)."""
    return done.consumed * 100 / done.terms.amount
