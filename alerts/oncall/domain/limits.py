"""What a schema may set a runtime rule to (the settings pages and any later API): the problems
of a proposed setting, by field, in words an admin can act on. Pure; the defaults themselves are
``rules.RULES``."""

from __future__ import annotations

from decimal import Decimal

from alerts.oncall.domain.rules import SEVERITIES, Rule

WINDOW_MIN_S = 60
WINDOW_MAX_S = 7 * 86400
FOR_MAX_S = 7 * 86400
# The AI cost rule reads the hourly rollup: its window is whole hours, at most the day it is
# compared with.
AI_COST_RULE = "factory_ai_cost_anomaly"
AI_WINDOW_MAX_S = 86400


def setting_problems(
    rule: Rule, *, threshold: Decimal, window_s: int, for_s: int, severity: str
) -> dict[str, str]:
    """Field name → what is wrong with it (empty: the setting is valid)."""
    problems: dict[str, str] = {}
    if not WINDOW_MIN_S <= window_s <= WINDOW_MAX_S:
        problems["window_s"] = (
            f"The window must be between {WINDOW_MIN_S} s (1 min) and {WINDOW_MAX_S:,} s "
            f"(7 days); {window_s:,} s is not."
        )
    elif rule.key == AI_COST_RULE and (window_s % 3600 or window_s > AI_WINDOW_MAX_S):
        problems["window_s"] = (
            "The AI cost rule compares whole hours: use a window of 3,600 s (1 h) to "
            f"86,400 s (24 h) in whole hours; {window_s:,} s is not."
        )
    if not 0 <= for_s <= FOR_MAX_S:
        problems["for_s"] = (
            f"'For' must be between 0 s (fire at once) and {FOR_MAX_S:,} s (7 days); "
            f"{for_s:,} s is not."
        )
    if threshold <= 0:
        problems["threshold"] = "The threshold must be above 0."
    elif rule.unit == "%" and threshold > 100:
        problems["threshold"] = f"A rate's threshold is a percentage: at most 100, not {threshold}."
    elif rule.key == AI_COST_RULE and threshold <= 1:
        problems["threshold"] = (
            "The AI cost must exceed its usual by a factor above 1 (2 means twice the usual)."
        )
    if severity not in SEVERITIES:
        problems["severity"] = f"Severity is one of {', '.join(SEVERITIES)}; not {severity!r}."
    return problems
