"""Template filters and tags of the portal: money, durations, navigation links, pagers."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import template
from django.db import connection
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from factory_portal import money, ranges
from factory_portal.accounts.permissions import can
from usage.domain.durations import percentile_ms
from usage.domain.ids import run_path

register = template.Library()

# ``{{ run.run_id|run_path }}``, not ``{% url 'run-detail' … %}``: reverse() leaves "/" in an id
# unencoded, and browsers would then resolve "a/../b" to another run.
register.filter("run_path", run_path)


def number_format() -> str:
    """The number format of the workspace whose page is rendered (the operator console and
    anything without a tenant: the default)."""
    return getattr(connection.tenant, "number_format", money.DEFAULT_FORMAT) or "en"


@register.filter
def usd(amount: Any) -> str:
    """``{{ amount|usd }}`` -> ``$1,234.57`` (``1.234,57 $`` for a German-format workspace)."""
    return money.usd(amount, number_format())


@register.filter
def percent(ratio: Any) -> str:
    """``{{ ratio|percent }}`` -> ``40.00%`` (``40,00%`` with a decimal comma)."""
    return money.ratio_percent(ratio, number_format())


@register.filter
def intcomma(value: Any) -> str:
    """A whole number grouped in the workspace's format (``1,234`` / ``1.234``); replaces
    humanize's, which would follow the site's language instead; a fractional one with two
    decimals (text too: ``"3616122.99"`` -> ``3,616,122.99``). Anything else as is."""
    try:
        number = Decimal(value)
        whole = number == number.to_integral_value()
        return money.grouped(number, 0 if whole else 2, number_format())
    except (TypeError, ValueError, ArithmeticError):
        return str(value)


def _clock(seconds: int) -> str:
    """``1h 04m`` or ``3m 12s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


@register.filter
def elapsed(start: datetime | None, now: datetime) -> str:
    """``1h 04m`` / ``3m 12s`` between ``start`` and ``now``."""
    if start is None:
        return "—"
    return _clock(max(0, int((now - start).total_seconds())))


@register.filter
def duration_ms(value: int | None) -> str:
    """``1h 04m``, ``3m 12s`` or ``850 ms``."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value} ms"
    return _clock(value // 1000)


@register.filter
def duration_s(value: float | None) -> str:
    """Seconds as ``1h 04m``, ``3m 12s`` or ``0m 00s``; ``—`` when unknown."""
    if value is None:
        return "—"
    return _clock(max(0, round(value)))


@register.filter
def duration_td(value: timedelta | None) -> str:
    """A length of time as ``1h 04m`` or ``3m 12s``."""
    return "—" if value is None else _clock(int(value.total_seconds()))


@register.filter
def pct(value: float | None) -> str:
    """A share (0.05) as a percentage (``5%``)."""
    return "—" if value is None else f"{value * 100:g}%"


@register.filter
def percentile(histogram: list[int] | None, q: float) -> int | None:
    """The ``q`` quantile in ms of a duration histogram (see ``usage.domain.durations``)."""
    return percentile_ms(histogram, float(q)) if histogram else None


@register.simple_tag(takes_context=True)
def nav_link(
    context: template.Context,
    href: str,
    label: str,
    exact: bool = False,
    count: Any = 0,
    count_title: str = "",
) -> str:
    """A navigation link, marked ``aria-current="page"`` on the page it points to (or below it),
    with a badge when ``count`` is not 0 (``count_title`` says what it counts)."""
    path = getattr(context.get("request"), "path", "")
    current = path == href if exact or href == "/" else path.startswith(href)
    marker = ' aria-current="page"' if current else ""
    badge = ""
    if count:
        badge = format_html(
            ' <span class="badge" title="{} {}" data-testid="{}-count">{}</span>',
            count,
            count_title,
            label.lower().replace(" ", "-"),
            count,
        )
    return format_html('<a href="{}"{}>{}{}</a>', href, mark_safe(marker), label, badge)  # noqa: S308


@register.simple_tag(takes_context=True)
def nav_group(context: template.Context, *prefixes: str) -> str:
    """`` data-current`` on a navigation menu (``<details class="menu">``) when the page lies
    below one of its links' ``prefixes``, so the closed menu still shows where the user is."""
    path = getattr(context.get("request"), "path", "")
    return " data-current" if any(path.startswith(prefix) for prefix in prefixes) else ""


@register.simple_tag(takes_context=True)
def pager(context: template.Context, page: Any, label: str, param: str = "page") -> str:
    """Previous / "Page n of m" / Next links for a Django ``Page``, keeping the other query
    parameters (filters) of the current request; empty when everything fits on one page."""
    if not page.has_other_pages():
        return ""
    request = context.get("request")
    query = request.GET.copy() if request is not None else QueryDict(mutable=True)

    def link(number: int, text: str, rel: str) -> str:
        query[param] = str(number)
        return format_html(
            '<a href="?{}" rel="{}" data-testid="{}-page">{}</a>',
            query.urlencode(),
            rel,
            rel,
            text,
        )

    parts = []
    if page.has_previous():
        parts.append(link(page.previous_page_number(), "Previous", "prev"))
    parts.append(format_html("<span>Page {} of {}</span>", page.number, page.paginator.num_pages))
    if page.has_next():
        parts.append(link(page.next_page_number(), "Next", "next"))
    return format_html(
        '<nav class="pager" aria-label="{}">{}</nav>',
        label,
        mark_safe(" ".join(parts)),  # noqa: S308
    )


@register.simple_tag(takes_context=True)
def runs_href(context: template.Context, time_range: Any = None, **filters: Any) -> str:
    """``{% runs_href time_range project=p.slug as href %}``: run history filtered that way over
    the range's days (a ``DayRange`` or the page's ``RangeControl``); ``""`` for a user who may
    not open run history, so the template shows plain text instead of a link that answers 403."""
    if not can(context.get("user"), "runs"):
        return ""
    chosen = getattr(time_range, "range", time_range)
    return ranges.runs_href(chosen, **{k: str(v) for k, v in filters.items() if v is not None})


@register.simple_tag
def step_runs_query(
    base: dict[str, str],
    step: str,
    template: str | None,
    template_filter: str = "",
    failure_type: str = "",
) -> str:
    """The run-history query of a step's row on the steps page: its range, step, template (the
    row's, or the page's filter) and failure type."""
    query = {**base, "step": step}
    if template is not None or template_filter:
        query["template"] = template if template is not None else template_filter
    if failure_type:
        query["failure_type"] = failure_type
    return urlencode(query)


_TREND_FORMATS = {
    "rate": lambda value: percent(value),
    "ms": lambda value: duration_ms(value),
    "usd": lambda value: usd(value),
    "int": lambda value: intcomma(value),
}
_ARROWS = {"up": "▲", "down": "▼", "flat": "="}


@register.simple_tag
def trend(change: Any, kind: str) -> str:
    """A figure's arrow against the previous period (``usage.selectors.steps.Trend``): red
    when worse, green when better, the previous value in its title and for screen readers."""
    if change is None:
        return ""
    shown = _TREND_FORMATS[kind]
    previous = shown(change.previous)
    direction = change.direction
    if change.current is not None and shown(change.current) == previous:
        direction = "flat"  # a move the figures shown cannot see ("94.68% ▼ from 94.68%")
    tone, said = "", ""
    if direction != "flat" and change.worse is not None:
        tone = " trend-worse" if change.worse else " trend-better"
        said = ", worse" if change.worse else ", better"  # not by colour alone
    return format_html(
        '<span class="trend trend-{}{}" title="previous period: {}" data-testid="trend">{}'
        '<span class="visually-hidden"> {}{} from {}</span></span>',
        direction,
        tone,
        previous,
        _ARROWS[direction],
        "unchanged" if direction == "flat" else direction,
        said,
        previous,
    )
