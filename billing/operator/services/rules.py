"""Operator-defined allocation rules: validated by the domain's ``Rule`` before they are saved;
every change bumps the rule's version, which allocation lines record."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from billing.domain.allocation import Rule
from billing.operator.models import AllocationRule

# What an operator sets on a rule (the API's field order).
RULE_FIELDS = (
    "name",
    "provider",
    "service_category",
    "charge_category",
    "method",
    "driver",
    "fixed_amount",
    "fixed_fraction",
    "fixed_split",
    "active",
)


def _validate(values: dict[str, Any]) -> None:
    if not str(values.get("name") or "").strip():
        raise ValidationError({"name": "A rule needs a name."})
    if values.get("method") not in AllocationRule.Method.values:
        raise ValidationError({"method": f"One of {', '.join(AllocationRule.Method.values)}."})
    if values.get("driver") not in AllocationRule.Driver.values:
        raise ValidationError({"driver": f"One of {', '.join(AllocationRule.Driver.values)}."})
    if values["method"] == "usage" and values["driver"] in ("even", "runs"):
        raise ValidationError(
            {
                "driver": "Usage-based rules need a usage driver (tokens, token "
                "cost, job-seconds, cpu_seconds, gb_hours)."
            }
        )
    try:
        Rule(
            values["method"],
            values["driver"],
            fixed_amount=values.get("fixed_amount"),
            fixed_fraction=values.get("fixed_fraction"),
            fixed_split=values.get("fixed_split") or "even",
        )
    except ValueError as exc:
        raise ValidationError({"method": str(exc)}) from exc


def allocation_rule_create(**values: Any) -> AllocationRule:
    values = {k: v for k, v in values.items() if k in RULE_FIELDS}
    values.setdefault("fixed_split", "even")
    _validate(values)
    return AllocationRule.objects.create(**values)


def allocation_rule_update(*, rule: AllocationRule, **changes: Any) -> AllocationRule:
    with transaction.atomic():
        rule = AllocationRule.objects.select_for_update().get(pk=rule.pk)
        values = {f: getattr(rule, f) for f in RULE_FIELDS}
        values.update({k: v for k, v in changes.items() if k in RULE_FIELDS})
        _validate(values)
        changed = any(getattr(rule, f) != values[f] for f in RULE_FIELDS)
        for name, value in values.items():
            setattr(rule, name, value)
        if changed:
            rule.version += 1
        rule.save()
    return rule
