"""A schema's settings of its runtime rules: the rules with their defaults and overrides (read),
and saving or resetting an override (write, validated by ``domain.limits``). The catalogue and
its defaults stay in ``domain.rules``; a rule without a ``RuleSetting`` row runs on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError

from alerts.oncall.domain.limits import setting_problems
from alerts.oncall.domain.rules import RULES, Rule, effective, rules_for
from alerts.oncall.models import RuleSetting


@dataclass(frozen=True)
class RuleRow:
    default: Rule
    effective: Rule
    setting: RuleSetting | None  # None: the defaults


def rule_rows(scope: str) -> list[RuleRow]:
    """The rules evaluated in ``scope`` (tenant or platform), in catalogue order."""
    settings = {s.rule: s for s in RuleSetting.objects.all()}
    return [
        RuleRow(rule, effective(rule, settings.get(rule.key)), settings.get(rule.key))
        for rule in rules_for(scope)
    ]


def rule_for(key: str, scope: str) -> Rule:
    """The catalogue's rule ``key`` if it is evaluated in ``scope``."""
    rule = RULES.get(key)
    if rule is None or scope not in rule.scopes:
        names = ", ".join(r.key for r in rules_for(scope))
        raise ValidationError(f"Unknown rule {key[:64]!r}; the rules here are {names}.")
    return rule


def rule_setting_save(
    *,
    rule: Rule,
    enabled: bool,
    threshold: Decimal,
    window_s: int,
    for_s: int,
    severity: str,
    updated_by: str,
    now: datetime,
) -> RuleSetting:
    """Store the schema's settings of ``rule`` (the next evaluation uses them); raises
    ``ValidationError`` by field for values outside ``domain.limits``."""
    problems = setting_problems(
        rule, threshold=threshold, window_s=window_s, for_s=for_s, severity=severity
    )
    if problems:
        raise ValidationError(problems)
    setting, _ = RuleSetting.objects.update_or_create(
        rule=rule.key,
        defaults={
            "enabled": enabled,
            "threshold": threshold,
            "window_s": window_s,
            "for_s": for_s,
            "severity": severity,
            "updated_at": now,
            "updated_by": updated_by[:254],
        },
    )
    return setting


def rule_setting_reset(*, rule: Rule) -> bool:
    """Back to the catalogue's defaults; False if the rule had no settings of its own."""
    deleted, _ = RuleSetting.objects.filter(rule=rule.key).delete()
    return bool(deleted)
